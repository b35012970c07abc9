// Package layouttest writes small OCI image layouts for tests: each layer is a
// list of tar entries, written gzip-compressed with image-spec types.
package layouttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Entry is one tar entry. Type defaults to a regular file (a directory when
// Name ends in "/").
type Entry struct {
	Name     string
	Type     byte
	Mode     int64
	Body     string
	Linkname string
	UID, GID int
}

// Write creates an OCI layout in dir with one image tagged tag.
func Write(dir, tag string, cfg ocispec.ImageConfig, layers ...[]Entry) error {
	blobs := filepath.Join(dir, ocispec.ImageBlobsDir, "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	put := func(b []byte) (digest.Digest, error) {
		d := digest.FromBytes(b)
		return d, os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644)
	}
	var descs []ocispec.Descriptor
	var diffIDs []digest.Digest
	for i, l := range layers {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		for _, e := range l {
			h := &tar.Header{Name: e.Name, Mode: e.Mode, Uid: e.UID, Gid: e.GID, Typeflag: e.Type, Linkname: e.Linkname, ModTime: time.Unix(1700000000, 0)}
			if h.Typeflag == 0 {
				h.Typeflag = tar.TypeReg
				if e.Name[len(e.Name)-1] == '/' {
					h.Typeflag = tar.TypeDir
				}
			}
			if h.Mode == 0 {
				h.Mode = 0o644
				if h.Typeflag == tar.TypeDir {
					h.Mode = 0o755
				}
			}
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(e.Body))
			}
			if err := tw.WriteHeader(h); err != nil {
				return fmt.Errorf("layer %d: %w", i, err)
			}
			if h.Size > 0 {
				if _, err := tw.Write([]byte(e.Body)); err != nil {
					return err
				}
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		diffIDs = append(diffIDs, digest.FromBytes(raw.Bytes()))
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(raw.Bytes())
		zw.Close()
		d, err := put(gz.Bytes())
		if err != nil {
			return err
		}
		descs = append(descs, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: int64(gz.Len())})
	}
	img := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}, Config: cfg, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}}
	cb, _ := json.Marshal(img)
	cd, err := put(cb)
	if err != nil {
		return err
	}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cd, Size: int64(len(cb))}, Layers: descs}
	mb, _ := json.Marshal(m)
	md, err := put(mb)
	if err != nil {
		return err
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb)), Annotations: map[string]string{ocispec.AnnotationRefName: tag}}}}
	ib, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), ib, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}
