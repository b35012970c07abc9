package vm_test

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/orchd/runtime/vm"
	"github.com/orchd/orchd/orchd/runtime/vm/initramfs"
	"github.com/orchd/orchd/orchd/runtime/vm/internal/layouttest"
	"github.com/orchd/orchd/orchd/runtime/vm/ocilayout"
)

type E = layouttest.Entry

// TestFlattenHonorsWhiteouts builds a two-layer layout, flattens it into a
// cpio archive and reads the archive back.
func TestFlattenHonorsWhiteouts(t *testing.T) {
	dir := t.TempDir()
	lower := []E{
		{Name: "etc/"}, {Name: "etc/passwd", Body: "root:x:0:0::/root:/bin/sh\n"},
		{Name: "data/"}, {Name: "data/old.txt", Body: "old"}, {Name: "data/keep.txt", Body: "keep"},
		{Name: "data/dir/"}, {Name: "data/dir/x", Body: "x"}, {Name: "data/dir/sub/"}, {Name: "data/dir/sub/y", Body: "y"},
		{Name: "bin/"}, {Name: "bin/tool", Mode: 0o4755, Body: "#!tool"},
		{Name: "bin/link", Type: tar.TypeSymlink, Linkname: "tool"},
		{Name: "bin/hard", Type: tar.TypeLink, Linkname: "bin/tool"},
		{Name: "gone/"}, {Name: "gone/deep", Body: "deep"},
	}
	upper := []E{
		{Name: "data/.wh.old.txt"},
		{Name: "data/new.txt", Body: "new"},
		// The opaque marker comes after this layer's own entry: only lower entries go.
		{Name: "data/dir/z", Body: "z"},
		{Name: "data/dir/.wh..wh..opq"},
		{Name: ".wh.gone"},
		{Name: "data/keep.txt", Body: "kept, changed"},
	}
	if err := layouttest.Write(dir, "t:1", ocispec.ImageConfig{Cmd: []string{"/bin/tool"}}, lower, upper); err != nil {
		t.Fatal(err)
	}
	img, err := ocilayout.Open(dir, "1")
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Manifest.Layers) != 2 {
		t.Fatalf("layers = %d, want 2", len(img.Manifest.Layers))
	}
	spill, err := os.Create(filepath.Join(t.TempDir(), "spill"))
	if err != nil {
		t.Fatal(err)
	}
	defer spill.Close()
	tree := initramfs.NewTree(spill)
	if err := vm.ApplyImage(tree, img); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "initrd.cpio")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.WriteCPIO(f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	got := readCPIO(t, out)
	want := map[string]string{
		"data/keep.txt": "kept, changed", "data/new.txt": "new", "data/dir/z": "z",
		"etc/passwd": "root:x:0:0::/root:/bin/sh\n", "bin/tool": "#!tool", "bin/hard": "#!tool", "bin/link": "tool",
	}
	for p, body := range want {
		e, ok := got[p]
		if !ok {
			t.Errorf("%s missing from the archive", p)
			continue
		}
		if e.body != body {
			t.Errorf("%s = %q, want %q", p, e.body, body)
		}
	}
	for _, p := range []string{"data/old.txt", "data/dir/x", "data/dir/sub", "data/dir/sub/y", "gone", "gone/deep", "data/.wh.old.txt", "data/dir/.wh..wh..opq", ".wh.gone"} {
		if _, ok := got[p]; ok {
			t.Errorf("%s is in the archive, but a whiteout removed it", p)
		}
	}
	if m := got["bin/tool"].h.Mode; m != initramfs.ModeReg|0o4755 {
		t.Errorf("bin/tool mode = %o, want %o", m, initramfs.ModeReg|0o4755)
	}
	if m := got["bin/link"].h.Mode & initramfs.ModeType; m != initramfs.ModeLink {
		t.Errorf("bin/link type = %o, want symlink", m)
	}
	if m := got["data/dir"].h.Mode & initramfs.ModeType; m != initramfs.ModeDir {
		t.Errorf("data/dir type = %o, want dir", m)
	}
	// Parents precede children, as the kernel's unpacker needs.
	seen := map[string]bool{}
	for _, p := range order(t, out) {
		if d := filepath.Dir(p); d != "." && !seen[d] {
			t.Errorf("%s comes before its parent %s", p, d)
		}
		seen[p] = true
	}
}

type cpioEntry struct {
	h    initramfs.Header
	body string
}

func readCPIO(t *testing.T, path string) map[string]cpioEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := initramfs.NewReader(f)
	out := map[string]cpioEntry{}
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = cpioEntry{*h, string(b)}
	}
}

func order(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := initramfs.NewReader(f)
	var out []string
	for {
		h, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name)
	}
}
