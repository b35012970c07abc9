package inception

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/orchd/orchd/orchd/container"
)

// ImageTag is the tag the inception image is written under.
const ImageTag = "orchd.test/inception:latest"

// LibraryClosure lists the shared libraries (and the dynamic loader) the given
// binaries load, as ldd resolves them on this host. Static binaries add nothing.
func LibraryClosure(ctx context.Context, bins ...string) ([]string, error) {
	seen := map[string]bool{}
	for _, b := range bins {
		out, err := exec.CommandContext(ctx, "ldd", b).CombinedOutput()
		if err != nil {
			if bytes.Contains(out, []byte("not a dynamic executable")) || bytes.Contains(out, []byte("statically linked")) {
				continue
			}
			return nil, fmt.Errorf("ldd %s: %w: %s (install: apt-get install -y libc-bin)", b, err, bytes.TrimSpace(out))
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				seen[f[2]] = true
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				seen[f[0]] = true // the loader: "/lib64/ld-linux-x86-64.so.2 (0x...)"
			case strings.Contains(sc.Text(), "not found"):
				return nil, fmt.Errorf("ldd %s: %s", b, strings.TrimSpace(sc.Text()))
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out, nil
}

// BuildImage writes the inception image as an OCI layout in dir: a minimal
// root (/etc basics, the usual empty dirs) plus the host files in libs at their
// own paths (symlinks resolved), with the driver as entrypoint.
func BuildImage(dir string, libs []string) (string, error) {
	return BuildImageWith(dir, libs, ImageExtra{})
}

// ImageExtra adds to the inception image.
type ImageExtra struct {
	// Tree is a directory copied into the root as is (symlinks kept), e.g.
	// unpacked Debian packages.
	Tree string
	// Files are written at their root-relative paths (mode 0644).
	Files map[string]string
	// Links are symlinks: root-relative path -> target.
	Links map[string]string
	// Entrypoint replaces the driver; Labels go into the image config.
	Entrypoint []string
	Labels     map[string]string
}

// BuildImageWith is BuildImage plus x.
func BuildImageWith(dir string, libs []string, x ImageExtra) (string, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mtime := time.Unix(1700000000, 0)
	dirs := map[string]bool{}
	addDir := func(p string, mode int64) error {
		if dirs[p] {
			return nil
		}
		dirs[p] = true
		return tw.WriteHeader(&tar.Header{Name: p + "/", Typeflag: tar.TypeDir, Mode: mode, ModTime: mtime})
	}
	addParents := func(p string) error {
		var parts []string
		for d := filepath.Dir(p); d != "/" && d != "."; d = filepath.Dir(d) {
			parts = append(parts, strings.TrimPrefix(d, "/"))
		}
		for i := len(parts) - 1; i >= 0; i-- {
			if err := addDir(parts[i], 0o755); err != nil {
				return err
			}
		}
		return nil
	}
	addFile := func(p string, mode int64, body []byte) error {
		if err := addParents("/" + p); err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	for _, d := range []struct {
		p    string
		mode int64
	}{{"etc", 0o755}, {"opt", 0o755}, {"opt/tools", 0o755}, {"root", 0o700}, {"run", 0o755}, {"tmp", 0o1777}, {"var", 0o755}, {"var/lib", 0o755}, {"var/tmp", 0o1777}, {"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755}} {
		if err := addDir(d.p, d.mode); err != nil {
			return "", err
		}
	}
	for _, f := range []struct{ p, body string }{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"},
		{"etc/group", "root:x:0:\nnogroup:x:65534:\n"},
		{"etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"},
		{"etc/os-release", "NAME=\"orchd inception\"\nID=orchd-inception\n"},
	} {
		if err := addFile(f.p, 0o644, []byte(f.body)); err != nil {
			return "", err
		}
	}
	if x.Tree != "" {
		if err := addTree(tw, x.Tree, mtime, dirs, addParents); err != nil {
			return "", fmt.Errorf("inception image: %w", err)
		}
	}
	for _, p := range sortedKeys(x.Files) {
		if err := addFile(p, 0o644, []byte(x.Files[p])); err != nil {
			return "", err
		}
	}
	for _, p := range sortedKeys(x.Links) {
		if err := addParents("/" + p); err != nil {
			return "", err
		}
		if err := tw.WriteHeader(&tar.Header{Name: p, Typeflag: tar.TypeSymlink, Linkname: x.Links[p], Mode: 0o777, ModTime: mtime}); err != nil {
			return "", err
		}
	}
	for _, l := range libs {
		if x.Tree != "" {
			if _, err := os.Lstat(filepath.Join(x.Tree, l)); err == nil {
				continue // the tree has it already
			}
		}
		b, err := os.ReadFile(l) // follows symlinks: the image gets the real bytes
		if err != nil {
			return "", fmt.Errorf("inception image: %w", err)
		}
		if err := addFile(strings.TrimPrefix(l, "/"), 0o755, b); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	diffID := digest.FromBytes(raw.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}

	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	blobs := filepath.Join(dir, ocispec.ImageBlobsDir, "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", err
	}
	put := func(b []byte) (ocispec.Descriptor, error) {
		sum := sha256.Sum256(b)
		d := digest.NewDigestFromBytes(digest.SHA256, sum[:])
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}, os.WriteFile(filepath.Join(blobs, d.Encoded()), b, 0o644)
	}
	layer, err := put(gz.Bytes())
	if err != nil {
		return "", err
	}
	layer.MediaType = ocispec.MediaTypeImageLayerGzip
	entrypoint := x.Entrypoint
	if len(entrypoint) == 0 {
		entrypoint = []string{ToolsDir + "/driver"}
	}
	cfg := ocispec.Image{
		Created:  &mtime,
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		Config: ocispec.ImageConfig{
			Entrypoint: entrypoint,
			Labels:     x.Labels,
			Env:        []string{"PATH=" + ToolsDir + "/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	}
	cb, _ := json.Marshal(cfg)
	cd, err := put(cb)
	if err != nil {
		return "", err
	}
	cd.MediaType = ocispec.MediaTypeImageConfig
	mb, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cd, Layers: []ocispec.Descriptor{layer}})
	md, err := put(mb)
	if err != nil {
		return "", err
	}
	md.MediaType = ocispec.MediaTypeImageManifest
	md.Annotations = map[string]string{ocispec.AnnotationRefName: ImageTag}
	md.Platform = &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	ib, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{md}})
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), ib, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return "", err
	}
	return container.LayoutScheme + dir, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// addTree copies dir into the image root: directories, regular files and
// symlinks (kept as links), skipping what is already there.
func addTree(tw *tar.Writer, dir string, mtime time.Time, dirs map[string]bool, addParents func(string) error) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := addParents("/" + rel); err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if dirs[rel] {
				return nil
			}
			dirs[rel] = true
			return tw.WriteHeader(&tar.Header{Name: rel + "/", Typeflag: tar.TypeDir, Mode: int64(fi.Mode().Perm()), ModTime: mtime})
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: mtime})
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: int64(fi.Mode().Perm()), Size: int64(len(b)), ModTime: mtime}); err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
