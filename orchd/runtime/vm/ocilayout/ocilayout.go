// Package ocilayout reads an image from a local OCI image layout directory
// (image-spec image-layout.md): index, manifest, config and layers.
package ocilayout

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Scheme prefixes an image reference that names a local layout.
const Scheme = "oci-layout://"

// Image is one image of a layout.
type Image struct {
	Dir      string
	Manifest ocispec.Manifest
	Config   ocispec.Image
}

// ParseRef splits "oci-layout://PATH[:TAG]" or "PATH[:TAG]" into path and tag.
// A relative path is resolved against base.
func ParseRef(ref, base string) (dir, tag string) {
	s := strings.TrimPrefix(ref, Scheme)
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		s, tag = s[:i], s[i+1:]
	}
	if !filepath.IsAbs(s) && base != "" {
		s = filepath.Join(base, s)
	}
	return s, tag
}

// IsLocal reports whether ref names a local layout (scheme, or a path that holds one).
func IsLocal(ref, base string) bool {
	if strings.HasPrefix(ref, Scheme) {
		return true
	}
	dir, _ := ParseRef(ref, base)
	_, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile))
	return err == nil
}

// Open reads the image ref names (see ParseRef). With a tag, the manifest whose
// org.opencontainers.image.ref.name is the tag (or ends in ":tag") is chosen;
// without one, the layout must hold exactly one. Indexes resolve to the
// manifest for this machine's architecture on linux.
func Open(ref, base string) (*Image, error) {
	dir, tag := ParseRef(ref, base)
	var idx ocispec.Index
	if err := readJSON(filepath.Join(dir, ocispec.ImageIndexFile), &idx); err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	var picked []ocispec.Descriptor
	for _, d := range idx.Manifests {
		name := d.Annotations[ocispec.AnnotationRefName]
		if tag == "" || name == tag || strings.HasSuffix(name, ":"+tag) {
			picked = append(picked, d)
		}
	}
	switch {
	case len(picked) == 0 && tag != "":
		return nil, fmt.Errorf("image %s: no manifest tagged %q in %s", ref, tag, dir)
	case len(picked) == 0:
		return nil, fmt.Errorf("image %s: %s lists no manifests", ref, dir)
	case len(picked) > 1:
		return nil, fmt.Errorf("image %s: %d manifests in %s; name one with :TAG", ref, len(picked), dir)
	}
	img := &Image{Dir: dir}
	desc := picked[0]
	for desc.MediaType == ocispec.MediaTypeImageIndex {
		var sub ocispec.Index
		if err := img.readBlobJSON(desc.Digest, &sub); err != nil {
			return nil, fmt.Errorf("image %s: %w", ref, err)
		}
		found := false
		for _, d := range sub.Manifests {
			if d.Platform == nil || (d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH) {
				desc, found = d, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("image %s: no linux/%s manifest", ref, runtime.GOARCH)
		}
	}
	if err := img.readBlobJSON(desc.Digest, &img.Manifest); err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", ref, err)
	}
	if err := img.readBlobJSON(img.Manifest.Config.Digest, &img.Config); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", ref, err)
	}
	return img, nil
}

// BlobPath is where a blob of the layout lives.
func (img *Image) BlobPath(d digest.Digest) string {
	return filepath.Join(img.Dir, ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
}

func (img *Image) readBlobJSON(d digest.Digest, v any) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d, err)
	}
	return readJSON(img.BlobPath(d), v)
}

// Layer opens layer i, decompressed.
func (img *Image) Layer(i int) (io.ReadCloser, error) {
	l := img.Manifest.Layers[i]
	f, err := os.Open(img.BlobPath(l.Digest))
	if err != nil {
		return nil, fmt.Errorf("layer %d: %w", i, err)
	}
	switch {
	case strings.HasSuffix(l.MediaType, "+gzip") || strings.HasSuffix(l.MediaType, ".gzip"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		return closers{zr, f}, nil
	case strings.HasSuffix(l.MediaType, "+zstd"):
		zr, err := zstd.NewReader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		return closers{zr.IOReadCloser(), f}, nil
	default:
		return f, nil
	}
}

type closers struct {
	io.ReadCloser
	under io.Closer
}

func (c closers) Close() error {
	err := c.ReadCloser.Close()
	if e := c.under.Close(); err == nil {
		err = e
	}
	return err
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", p, err)
	}
	return nil
}
