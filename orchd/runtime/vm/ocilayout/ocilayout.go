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

	"github.com/orchd/orchd/orchd/container"
)

// Image is one image of a layout.
type Image struct {
	Dir      string
	Manifest ocispec.Manifest
	Config   ocispec.Image
}

// Open reads the image tagged tag from the layout at dir; container.ParseLayoutRef
// splits a FROM value into the two, and container.PickManifest chooses the
// manifest. Indexes resolve to the manifest for this machine's architecture on
// linux.
func Open(dir, tag string) (*Image, error) {
	ref := dir
	if tag != "" {
		ref += ":" + tag
	}
	var idx ocispec.Index
	if err := readJSON(filepath.Join(dir, ocispec.ImageIndexFile), &idx); err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	desc, err := container.PickManifest(idx, tag)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	img := &Image{Dir: dir}
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
