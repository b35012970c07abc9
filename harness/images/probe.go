package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/orchd/orchd/harness/gobuild"
)

// probePackage is the probe's package directory relative to the module root.
const probePackage = "fixtures/probe"

// GoInstallHint says how to get the Go toolchain the probe build needs.
const GoInstallHint = "install Go 1.26+ (https://go.dev/dl) and put `go` on PATH, or pass a prebuilt probe with --probe"

// BuildProbe compiles the probe (static: CGO_ENABLED=0, -trimpath) for
// linux/arch from the module at moduleRoot into cacheDir, keyed by a hash of
// its sources, the go.mod/go.sum and the Go version, and returns the binary's
// path. A cached binary is reused without invoking the compiler.
func BuildProbe(ctx context.Context, moduleRoot, cacheDir, arch string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build probe: go not found: %s", GoInstallHint)
	}
	goVersion, err := output(ctx, moduleRoot, goBin, "env", "GOVERSION")
	if err != nil {
		return "", fmt.Errorf("build probe: %w", err)
	}
	key, err := sourceKey(moduleRoot, goVersion, arch)
	if err != nil {
		return "", fmt.Errorf("build probe: %w", err)
	}
	dir := filepath.Join(cacheDir, key)
	bin := filepath.Join(dir, "probe")
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build probe: %w", err)
	}
	// Build to a unique name and rename: concurrent builders never see a partial binary.
	tmp, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return "", fmt.Errorf("build probe: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := gobuild.StaticBinary(ctx, moduleRoot, "./"+probePackage, tmp.Name(), gobuild.ForArch(arch), gobuild.Stripped()); err != nil {
		return "", fmt.Errorf("build probe: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", fmt.Errorf("build probe: %w", err)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", fmt.Errorf("build probe: %w", err)
	}
	return bin, nil
}

// sourceKey hashes everything that determines the probe binary.
func sourceKey(moduleRoot, goVersion, arch string) (string, error) {
	var files []string
	err := filepath.WalkDir(filepath.Join(moduleRoot, probePackage), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash probe sources: %w", err)
	}
	sort.Strings(files)
	files = append(files, filepath.Join(moduleRoot, "go.mod"), filepath.Join(moduleRoot, "go.sum"))
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00linux/%s\x00", goVersion, arch)
	for _, f := range files {
		rel, _ := filepath.Rel(moduleRoot, f)
		b, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("hash probe sources: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:20], nil
}

func output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// readAll reads a file fully (the probe binary goes into a layer in memory).
func readAll(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
