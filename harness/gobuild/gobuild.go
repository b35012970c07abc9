// Package gobuild is the one place the harness compiles orchd, its supervisor
// binary and the suite binaries, so every runner ships the same set.
package gobuild

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// static is the environment for binaries that run where no libc can be assumed
// (inside containers and VM guests, or re-exec'd by the orchdi platform).
const static = "CGO_ENABLED=0"

// Go runs `go args...` in the module root with env added to the environment;
// on failure the error carries go's output.
func Go(ctx context.Context, root string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Option changes how a binary is built.
type Option func(*build)

type build struct {
	env   []string // after static: later entries win (os/exec keeps the last)
	flags []string // go build flags before -o
}

func newBuild(opts []Option) build {
	var b build
	for _, o := range opts {
		o(&b)
	}
	return b
}

func (b build) args(out string, pkgs ...string) []string {
	return append(append(append([]string{"build"}, b.flags...), "-o", out), pkgs...)
}

// Race builds with the race detector (which needs cgo): processes a test
// starts from the binary then report their races too.
func Race() Option {
	return func(b *build) {
		b.env = append(b.env, "CGO_ENABLED=1")
		b.flags = append(b.flags, "-race")
	}
}

// ForArch builds for linux/goarch (a fixture image's architecture).
func ForArch(goarch string) Option {
	return func(b *build) { b.env = append(b.env, "GOOS=linux", "GOARCH="+goarch) }
}

// Stripped leaves out paths, VCS stamps and symbols, so the binary depends
// only on its sources (images keyed by a source hash stay reproducible).
func Stripped() Option {
	return func(b *build) { b.flags = append(b.flags, "-trimpath", "-buildvcs=false", "-ldflags=-s -w") }
}

// Orchd builds static orchd and orchd-supervise into dir and returns the path
// of orchd. orchd-supervise must sit beside orchd: the orchdi platform runs
// supervisors as it.
func Orchd(ctx context.Context, root, dir string, opts ...Option) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build orchd: %w", err)
	}
	b := newBuild(opts)
	if err := Go(ctx, root, append([]string{static}, b.env...), b.args(dir+string(filepath.Separator), "./cmd/orchd", "./cmd/orchd-supervise")...); err != nil {
		return "", err
	}
	return filepath.Join(dir, "orchd"), nil
}

// StaticBinary builds one static binary of pkg (a path relative to root, "./...") at out.
func StaticBinary(ctx context.Context, root, pkg, out string, opts ...Option) error {
	b := newBuild(opts)
	return Go(ctx, root, append([]string{static}, b.env...), b.args(out, pkg)...)
}

// SuiteBinary is the file name of a compiled suite ("inception/inner" ->
// "inception-inner.test").
func SuiteBinary(name string) string {
	return strings.ReplaceAll(name, "/", "-") + ".test"
}

// SuiteOptions say how suites are compiled.
type SuiteOptions struct {
	Tags   []string // build tags
	Static bool     // CGO_ENABLED=0, for suites that run in a VM guest
}

// Suites compiles suites/<name> for each name into dir (one go invocation, so
// the build work is shared) and returns name -> binary path (SuiteBinary(name)).
func Suites(ctx context.Context, root, dir string, o SuiteOptions, names ...string) (map[string]string, error) {
	var env []string
	if o.Static {
		env = []string{static}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("build suites: %w", err)
	}
	bins := map[string]string{}
	if len(names) == 0 {
		return bins, nil
	}
	// go test -c -o DIR/ names each binary after its package's last element,
	// which is ambiguous for nested suites: compile those one by one.
	var flat []string
	for _, n := range names {
		bins[n] = filepath.Join(dir, SuiteBinary(n))
		if strings.Contains(n, "/") {
			if err := Go(ctx, root, env, testArgs(o.Tags, bins[n], "./suites/"+n)...); err != nil {
				return nil, err
			}
			continue
		}
		flat = append(flat, "./suites/"+n)
	}
	if len(flat) > 0 {
		if err := Go(ctx, root, env, testArgs(o.Tags, dir+string(filepath.Separator), flat...)...); err != nil {
			return nil, err
		}
	}
	for n, b := range bins {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("compiled suite %s: %w", n, err)
		}
	}
	return bins, nil
}

func testArgs(tags []string, out string, pkgs ...string) []string {
	args := []string{"test", "-c"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	return append(append(args, "-o", out), pkgs...)
}

// OrchdT is Orchd for a test: it builds into t's temp dir from this module
// and fails t when it cannot.
func OrchdT(t testing.TB, opts ...Option) string {
	t.Helper()
	root, err := ModuleRoot(context.Background())
	if err != nil {
		t.Fatalf("build orchd: %v", err)
	}
	out, err := Orchd(context.Background(), root, t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("build orchd: %v", err)
	}
	return out
}
