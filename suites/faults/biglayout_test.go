package faults

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/harness/images"
)

// bigLayout copies the base layout to dir and adds an uncompressed layer
// holding size bytes of random data, so importing and unpacking it takes
// long enough to be caught in flight. The image is named ref.
func bigLayout(base images.Layout, dir, ref string, size int64) string {
	GinkgoHelper()
	blobs := filepath.Join(dir, ocispec.ImageBlobsDir, string(digest.Canonical))
	Expect(os.MkdirAll(blobs, 0o755)).To(Succeed())
	srcBlobs := filepath.Join(base.Dir, ocispec.ImageBlobsDir, string(digest.Canonical))
	ents, err := os.ReadDir(srcBlobs)
	Expect(err).NotTo(HaveOccurred())
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(srcBlobs, e.Name()))
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(blobs, e.Name()), b, 0o644)).To(Succeed())
	}
	readJSON := func(p string, v any) {
		b, err := os.ReadFile(p)
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(b, v)).To(Succeed(), p)
	}
	put := func(mediaType string, b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		Expect(os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644)).To(Succeed())
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
	}
	var idx ocispec.Index
	readJSON(filepath.Join(base.Dir, ocispec.ImageIndexFile), &idx)
	Expect(idx.Manifests).To(HaveLen(1), "base layout %s", base.Dir)
	var m ocispec.Manifest
	readJSON(filepath.Join(srcBlobs, idx.Manifests[0].Digest.Encoded()), &m)
	var img ocispec.Image
	readJSON(filepath.Join(srcBlobs, m.Config.Digest.Encoded()), &img)

	// The layer: one file of random bytes, streamed to the blob while hashed.
	tmp := filepath.Join(blobs, "layer.tmp")
	f, err := os.Create(tmp)
	Expect(err).NotTo(HaveOccurred())
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(f, h))
	Expect(tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})).To(Succeed())
	_, err = io.CopyN(tw, rand.NewChaCha8([32]byte{7}), size)
	Expect(err).NotTo(HaveOccurred())
	Expect(tw.Close()).To(Succeed())
	st, err := f.Stat()
	Expect(err).NotTo(HaveOccurred())
	Expect(f.Close()).To(Succeed())
	layer := digest.NewDigestFromEncoded(digest.SHA256, fmt.Sprintf("%x", h.Sum(nil)))
	Expect(os.Rename(tmp, filepath.Join(blobs, layer.Encoded()))).To(Succeed())

	m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: layer, Size: st.Size()})
	img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, layer)
	cfg, err := json.Marshal(img)
	Expect(err).NotTo(HaveOccurred())
	m.Config = put(ocispec.MediaTypeImageConfig, cfg)
	mb, err := json.Marshal(m)
	Expect(err).NotTo(HaveOccurred())
	entry := put(ocispec.MediaTypeImageManifest, mb)
	entry.Platform = idx.Manifests[0].Platform
	entry.Annotations = map[string]string{ocispec.AnnotationRefName: ref, images.AnnotationContainerdImageName: ref}
	idx.Manifests = []ocispec.Descriptor{entry}
	ib, err := json.Marshal(idx)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), ib, 0o644)).To(Succeed())
	// Not images.Verify: it knows only the fixtures' gzip layers, and an
	// uncompressed one is what keeps this layer cheap to write.
	Expect(os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)).To(Succeed())
	return "oci-layout://" + dir
}
