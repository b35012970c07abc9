package toolchain_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/harness/toolchain"
)

func resolve(t *testing.T, want string) *toolchain.Toolchain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: want, Progress: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	return tc
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func checkComplete(t *testing.T, tc *toolchain.Toolchain) {
	t.Helper()
	names := []string{toolchain.BinContainerd, toolchain.BinShim, toolchain.BinCtr, toolchain.BinRunc}
	for i, c := range tc.Components() {
		if c.Name != names[i] || c.Version == "" || c.Source == "" {
			t.Errorf("component %d incomplete: %+v", i, c)
		}
		if st, err := os.Stat(c.Path); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s: %s not executable (%v)", c.Name, c.Path, err)
		}
	}
	if filepath.Dir(tc.Shim.Path) != filepath.Dir(tc.Containerd.Path) {
		t.Errorf("shim %s not next to containerd %s", tc.Shim.Path, tc.Containerd.Path)
	}
	path := tc.PathEnv("/usr/bin:/bin")
	if !strings.HasPrefix(path, filepath.Dir(tc.Containerd.Path)+":") {
		t.Errorf("PathEnv does not put %s first: %s", filepath.Dir(tc.Containerd.Path), path)
	}
}

func TestResolveSystem(t *testing.T) {
	tc := resolve(t, toolchain.System)
	checkComplete(t, tc)
	if tc.Name != toolchain.System || tc.Major() != 1 {
		t.Errorf("system toolchain: name %q major %d (%s)", tc.Name, tc.Major(), tc.Containerd.Version)
	}
	if tc.Containerd.Version != tc.Shim.Version {
		t.Errorf("containerd %s with shim %s", tc.Containerd.Version, tc.Shim.Version)
	}
}

func TestResolvePinned(t *testing.T) {
	tc := resolve(t, toolchain.Pinned)
	checkComplete(t, tc)
	if tc.Name != toolchain.Pinned || tc.Major() != 2 {
		t.Errorf("pinned toolchain: name %q major %d", tc.Name, tc.Major())
	}
	for _, c := range []toolchain.Component{tc.Containerd, tc.Shim, tc.Ctr} {
		if !strings.HasPrefix(c.Version, strings.TrimPrefix(toolchain.Pinned, "v")) {
			t.Errorf("%s version %s, want %s", c.Name, c.Version, toolchain.Pinned)
		}
	}
	// "" prefers the pinned 2.x when it is present.
	if def := resolve(t, ""); def.Name != toolchain.Pinned {
		t.Errorf(`Resolve("") = %s, want %s`, def.Name, toolchain.Pinned)
	}
}

func TestAvailableListsBoth(t *testing.T) {
	resolve(t, toolchain.Pinned) // make sure it is built
	tcs, err := toolchain.Available(context.Background(), toolchain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tc := range tcs {
		names = append(names, tc.Name)
	}
	if strings.Join(names, ",") != toolchain.System+","+toolchain.Pinned {
		t.Errorf("Available = %v", names)
	}
}

func TestEnvDirWins(t *testing.T) {
	pinned := resolve(t, toolchain.Pinned)
	dir := t.TempDir()
	for _, c := range []toolchain.Component{pinned.Containerd, pinned.Shim, pinned.Ctr} {
		if err := os.Symlink(c.Path, filepath.Join(dir, c.Name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(toolchain.EnvDir, dir)
	tc := resolve(t, "")
	if tc.Containerd.Source != toolchain.SourceEnv || tc.Containerd.Path != filepath.Join(dir, toolchain.BinContainerd) {
		t.Errorf("containerd from %s (%s), want %s", tc.Containerd.Path, tc.Containerd.Source, toolchain.SourceEnv)
	}
	if tc.Runc.Source != toolchain.SourcePath {
		t.Errorf("runc source %s, want PATH (not in %s)", tc.Runc.Source, dir)
	}
}

func TestMissingSaysHowToInstall(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	t.Setenv(toolchain.EnvDir, "")
	ctx := context.Background()
	_, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: toolchain.System})
	if err == nil || !strings.Contains(err.Error(), toolchain.AptInstall) {
		t.Errorf("system without containerd: %v, want the apt-get command", err)
	}
	// No 2.x anywhere and no go to build it: the error carries the go install line.
	_, err = toolchain.Resolve(ctx, toolchain.Options{Containerd: "v2.0.99", Dir: empty})
	want := "go install github.com/containerd/containerd/v2/cmd/containerd@v2.0.99"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("missing v2.0.99: %v, want %q", err, want)
	}
	if _, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: "1.7"}); err == nil {
		t.Error(`Resolve("1.7") accepted an unsupported selector`)
	}
}
