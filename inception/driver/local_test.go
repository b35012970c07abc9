package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLocalToolsCopiesWhatRunsOftenAndLinksTheRest(t *testing.T) {
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "tools")
	files := []string{"bin/containerd", "bin/ctr", "bin/containerd-shim-runc-v2", "bin/runc", "bin/crun", "orchd", "orchd-supervise"}
	for _, f := range files {
		p := filepath.Join(src, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!"+f), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin, orchd, err := localTools(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if orchd != filepath.Join(dst, "orchd") || bin != filepath.Join(dst, "bin") {
		t.Fatalf("bin %s, orchd %s", bin, orchd)
	}
	for _, f := range files {
		p := filepath.Join(dst, f)
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		linked := st.Mode()&os.ModeSymlink != 0
		if want := f == "bin/containerd" || f == "bin/ctr"; linked != want {
			t.Errorf("%s: a link %v, want %v", f, linked, want)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != "#!"+f {
			t.Errorf("%s: %q, %v", f, b, err)
		}
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s: not executable (%v)", f, err)
		}
	}
}
