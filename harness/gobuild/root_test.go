package gobuild

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"fixtures/probe/main.go", "cmd/orchd/main.go"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("module root %s: %v", root, err)
		}
	}
	// Another module is never taken for ours.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if isOurModule(other) || !isOurModule(root) {
		t.Errorf("isOurModule: other module %v, ours %v", isOurModule(other), isOurModule(root))
	}
}

// TestOptions builds a small program static, stripped and with the race
// detector, and reads back from each binary the settings go recorded.
func TestOptions(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: compiles three binaries")
	}
	ctx := context.Background()
	root, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const pkg = "./harness/daemon/daemontest/testdata/sleeper"
	for _, tc := range []struct {
		name      string
		opts      []Option
		want, not []string
	}{
		{"static", nil, []string{"CGO_ENABLED=0"}, []string{"-race=true", "-trimpath=true"}},
		{"stripped", []Option{Stripped()}, []string{"CGO_ENABLED=0", "-trimpath=true"}, []string{"-race=true", "vcs."}},
		{"race", []Option{Race()}, []string{"CGO_ENABLED=1", "-race=true"}, []string{"CGO_ENABLED=0"}},
	} {
		out := filepath.Join(t.TempDir(), tc.name)
		if err := StaticBinary(ctx, root, pkg, out, tc.opts...); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, err := exec.Command("go", "version", "-m", out).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: go version -m: %v\n%s", tc.name, err, b)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: build settings lack %q:\n%s", tc.name, w, b)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(string(b), n) {
				t.Errorf("%s: build settings have %q:\n%s", tc.name, n, b)
			}
		}
	}
}
