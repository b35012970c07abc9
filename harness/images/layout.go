package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// epoch is the timestamp of every file and config: fixed so that the same
// probe binary always yields the same digests.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// entry is one tar member of a layer.
type entry struct {
	name     string // relative, no leading slash; directories end in "/"
	mode     int64  // permission bits (plus sticky etc.)
	uid, gid int
	body     []byte
}

func dir(name string, mode int64) entry { return entry{name: name + "/", mode: mode} }
func file(name string, mode int64, body string) entry {
	return entry{name: name, mode: mode, body: []byte(body)}
}

// whiteout hides name (a file or directory) of the lower layers.
func whiteout(name string) entry {
	return entry{name: path.Join(path.Dir(name), ".wh."+path.Base(name)), mode: 0o644}
}

// opaque hides everything the lower layers have below dir.
func opaque(dir string) entry { return entry{name: path.Join(dir, ".wh..wh..opq"), mode: 0o644} }

// layer is a built, compressed layer.
type layer struct {
	blob   []byte        // gzip'd tar
	diffID digest.Digest // digest of the uncompressed tar
}

// buildLayer writes entries in the given order (parents first) as a tar and gzips it.
func buildLayer(entries []entry) (layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return layer{}, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return layer{}, fmt.Errorf("layer entry %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return layer{}, fmt.Errorf("close layer tar: %w", err)
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return layer{}, err
	}
	// The gzip header keeps its zero ModTime and no name: reproducible blobs.
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return layer{}, fmt.Errorf("gzip layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return layer{}, fmt.Errorf("gzip layer: %w", err)
	}
	return layer{blob: gz.Bytes(), diffID: digest.FromBytes(raw.Bytes())}, nil
}

// imageDef describes one image before it is written.
type imageDef struct {
	name   string
	layers []layer
	config ocispec.ImageConfig
	arch   string
}

// writeLayout writes def as an OCI image layout into dir (which must not exist
// yet) and returns the manifest and config descriptors.
func writeLayout(dir, ref string, def imageDef) (manifest, config ocispec.Descriptor, err error) {
	blobs := filepath.Join(dir, ocispec.ImageBlobsDir, string(digest.Canonical))
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return manifest, config, fmt.Errorf("layout %s: %w", def.name, err)
	}
	put := func(mediaType string, b []byte) (ocispec.Descriptor, error) {
		d := digest.FromBytes(b)
		if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("write blob %s: %w", d, err)
		}
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, nil
	}
	platform := ocispec.Platform{OS: "linux", Architecture: def.arch}

	img := ocispec.Image{
		Created:  &epoch,
		Platform: platform,
		Config:   def.config,
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	var layerDescs []ocispec.Descriptor
	for i, l := range def.layers {
		d, err := put(ocispec.MediaTypeImageLayerGzip, l.blob)
		if err != nil {
			return manifest, config, fmt.Errorf("layout %s: %w", def.name, err)
		}
		layerDescs = append(layerDescs, d)
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.diffID)
		img.History = append(img.History, ocispec.History{
			Created:   &epoch,
			CreatedBy: fmt.Sprintf("orchd-harness images: %s layer %d", def.name, i+1),
		})
	}
	configJSON, err := json.Marshal(img)
	if err != nil {
		return manifest, config, fmt.Errorf("layout %s: config: %w", def.name, err)
	}
	if config, err = put(ocispec.MediaTypeImageConfig, configJSON); err != nil {
		return manifest, config, fmt.Errorf("layout %s: %w", def.name, err)
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config,
		Layers:    layerDescs,
	}
	manifestJSON, err := json.Marshal(m)
	if err != nil {
		return manifest, config, fmt.Errorf("layout %s: manifest: %w", def.name, err)
	}
	if manifest, err = put(ocispec.MediaTypeImageManifest, manifestJSON); err != nil {
		return manifest, config, fmt.Errorf("layout %s: %w", def.name, err)
	}
	entry := manifest
	entry.Platform = &platform
	entry.Annotations = map[string]string{
		// The OCI name; containerd's importer keeps a full ref as is.
		ocispec.AnnotationRefName: ref,
		// containerd's own name annotation wins over every ref translator,
		// so ctr and client.Import name the image ref without extra flags.
		AnnotationContainerdImageName: ref,
	}
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{entry},
	}
	if err := writeJSON(filepath.Join(dir, ocispec.ImageIndexFile), idx); err != nil {
		return manifest, config, fmt.Errorf("layout %s: %w", def.name, err)
	}
	if err := writeJSON(filepath.Join(dir, ocispec.ImageLayoutFile),
		ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}); err != nil {
		return manifest, config, fmt.Errorf("layout %s: %w", def.name, err)
	}
	return manifest, config, nil
}

// AnnotationContainerdImageName is containerd's index annotation for an image name.
const AnnotationContainerdImageName = "io.containerd.image.name"

func writeJSON(p string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(p), err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(p), err)
	}
	return nil
}

// WriteTar streams the OCI layout in layoutDir as a tar archive, the form
// `ctr images import` and the containerd client's Import read.
// Members are oci-layout, index.json and blobs/<alg>/<hex>, in that order.
func WriteTar(layoutDir string, w io.Writer) error {
	files := []string{ocispec.ImageLayoutFile, ocispec.ImageIndexFile}
	var blobs []string
	root := filepath.Join(layoutDir, ocispec.ImageBlobsDir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(layoutDir, p)
			if err != nil {
				return err
			}
			blobs = append(blobs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tar layout %s: %w", layoutDir, err)
	}
	sort.Strings(blobs)
	files = append(files, blobs...)

	tw := tar.NewWriter(w)
	for _, name := range files {
		if err := addFile(tw, layoutDir, name); err != nil {
			return fmt.Errorf("tar layout %s: %w", layoutDir, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("tar layout %s: %w", layoutDir, err)
	}
	return nil
}

func addFile(tw *tar.Writer, root, name string) error {
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h := &tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: epoch, Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Verify checks an OCI layout: oci-layout version, every index entry's
// manifest, config and layers exist with matching size and digest, the
// manifests and configs parse, and the layers' uncompressed digests match the
// config's rootfs.diff_ids.
func Verify(layoutDir string) error {
	var il ocispec.ImageLayout
	if err := readJSON(filepath.Join(layoutDir, ocispec.ImageLayoutFile), &il); err != nil {
		return fmt.Errorf("verify %s: %w", layoutDir, err)
	}
	if il.Version != ocispec.ImageLayoutVersion {
		return fmt.Errorf("verify %s: oci-layout version %q, want %q", layoutDir, il.Version, ocispec.ImageLayoutVersion)
	}
	var idx ocispec.Index
	if err := readJSON(filepath.Join(layoutDir, ocispec.ImageIndexFile), &idx); err != nil {
		return fmt.Errorf("verify %s: %w", layoutDir, err)
	}
	if idx.SchemaVersion != 2 || len(idx.Manifests) == 0 {
		return fmt.Errorf("verify %s: index schemaVersion %d with %d manifests", layoutDir, idx.SchemaVersion, len(idx.Manifests))
	}
	for _, md := range idx.Manifests {
		if md.MediaType != ocispec.MediaTypeImageManifest {
			return fmt.Errorf("verify %s: index entry %s: media type %q", layoutDir, md.Digest, md.MediaType)
		}
		if err := verifyManifest(layoutDir, md); err != nil {
			return fmt.Errorf("verify %s: manifest %s: %w", layoutDir, md.Digest, err)
		}
	}
	return nil
}

func verifyManifest(layoutDir string, md ocispec.Descriptor) error {
	raw, err := readBlob(layoutDir, md)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if m.SchemaVersion != 2 || m.MediaType != ocispec.MediaTypeImageManifest {
		return fmt.Errorf("schemaVersion %d mediaType %q", m.SchemaVersion, m.MediaType)
	}
	rawConfig, err := readBlob(layoutDir, m.Config)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var img ocispec.Image
	if err := json.Unmarshal(rawConfig, &img); err != nil {
		return fmt.Errorf("config: parse: %w", err)
	}
	if img.OS == "" || img.Architecture == "" || img.RootFS.Type != "layers" {
		return fmt.Errorf("config: os %q arch %q rootfs type %q", img.OS, img.Architecture, img.RootFS.Type)
	}
	if len(img.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("config has %d diff_ids for %d layers", len(img.RootFS.DiffIDs), len(m.Layers))
	}
	for i, ld := range m.Layers {
		blob, err := readBlob(layoutDir, ld)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		if ld.MediaType != ocispec.MediaTypeImageLayerGzip {
			return fmt.Errorf("layer %d: media type %q", i, ld.MediaType)
		}
		zr, err := gzip.NewReader(bytes.NewReader(blob))
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		diffID, err := digest.Canonical.FromReader(zr)
		if err != nil {
			return fmt.Errorf("layer %d: decompress: %w", i, err)
		}
		if diffID != img.RootFS.DiffIDs[i] {
			return fmt.Errorf("layer %d: diff_id %s, config says %s", i, diffID, img.RootFS.DiffIDs[i])
		}
	}
	return nil
}

// readBlob reads a descriptor's blob and checks its size and digest.
func readBlob(layoutDir string, d ocispec.Descriptor) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("descriptor digest: %w", err)
	}
	b, err := os.ReadFile(filepath.Join(layoutDir, ocispec.ImageBlobsDir, d.Digest.Algorithm().String(), d.Digest.Encoded()))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: size %d, descriptor says %d", d.Digest, len(b), d.Size)
	}
	if got := d.Digest.Algorithm().FromBytes(b); got != d.Digest {
		return nil, fmt.Errorf("blob %s: content digest is %s", d.Digest, got)
	}
	return b, nil
}

func readJSON(p string, v any) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parse %s: %w", filepath.Base(p), err)
	}
	return nil
}
