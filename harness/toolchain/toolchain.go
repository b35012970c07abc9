// Package toolchain locates (and, for pinned 2.x releases, builds) the
// containerd binaries the harness runs: containerd, containerd-shim-runc-v2,
// ctr and runc, recording where each came from and which version it is.
package toolchain

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Pinned is the containerd 2.x release built when no 2.x binaries are found.
const Pinned = "v2.2.1"

// System names the distribution's containerd (Debian's 1.6 here).
const System = "system"

// EnvDir names an explicit toolchain directory that wins over every other source.
const EnvDir = "ORCHD_TOOLCHAIN"

// Sources of a component.
const (
	SourceEnv   = "ORCHD_TOOLCHAIN"
	SourcePath  = "PATH"
	SourceBuilt = "built"
	SourceCache = "cache"
)

// Binary names of the components.
const (
	BinContainerd = "containerd"
	BinShim       = "containerd-shim-runc-v2"
	BinCtr        = "ctr"
	BinRunc       = "runc"
)

// Install hints used in errors so a missing prerequisite says how to fix it.
const (
	AptInstall = "apt-get install -y containerd runc"
	AptRunc    = "apt-get install -y runc"
)

// GoInstallCommand is the command that builds a pinned containerd 2.x into bin.
func GoInstallCommand(version, bin string) string {
	return fmt.Sprintf("GOBIN=%s go install %s", bin, strings.Join(goPackages(version), " "))
}

func goPackages(version string) []string {
	var pkgs []string
	for _, c := range []string{BinContainerd, BinShim, BinCtr} {
		pkgs = append(pkgs, "github.com/containerd/containerd/v2/cmd/"+c+"@"+version)
	}
	return pkgs
}

// Component is one resolved binary.
type Component struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Version string `json:"version"`
	Source  string `json:"source"`
}

// Toolchain is a consistent set of binaries for one containerd release.
type Toolchain struct {
	Name       string    `json:"name"`
	Containerd Component `json:"containerd"`
	Shim       Component `json:"shim"`
	Ctr        Component `json:"ctr"`
	Runc       Component `json:"runc"`
}

// Components lists the binaries in a fixed order (for tables).
func (t *Toolchain) Components() []Component {
	return []Component{t.Containerd, t.Shim, t.Ctr, t.Runc}
}

// Major is the containerd major version (1 or 2); 0 if unknown.
func (t *Toolchain) Major() int {
	v := strings.TrimPrefix(t.Containerd.Version, "v")
	if i := strings.IndexByte(v, '.'); i > 0 {
		var m int
		if _, err := fmt.Sscanf(v[:i], "%d", &m); err == nil {
			return m
		}
	}
	return 0
}

// BinDirs are the directories holding the components, containerd's first.
func (t *Toolchain) BinDirs() []string {
	var dirs []string
	seen := map[string]bool{}
	for _, c := range t.Components() {
		d := filepath.Dir(c.Path)
		if c.Path != "" && !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// PathEnv returns a PATH value with the toolchain's directories first, so the
// daemon execs this toolchain's shim (containerd looks the shim up on PATH)
// and the shim finds runc.
func (t *Toolchain) PathEnv(base string) string {
	parts := t.BinDirs()
	seen := map[string]bool{}
	for _, p := range parts {
		seen[p] = true
	}
	for _, p := range filepath.SplitList(base) {
		if p != "" && !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, string(os.PathListSeparator))
}

// Options select a toolchain.
type Options struct {
	// Dir is the build cache root; "" = $XDG_CACHE_HOME (or ~/.cache)/orchd-harness/toolchain.
	Dir string
	// Containerd is "system", a pinned 2.x version such as "v2.2.1", or "" to
	// prefer the pinned 2.x (without building if the system one is present).
	Containerd string
	// Progress receives plain progress lines while building; nil = silent.
	Progress io.Writer
}

func (o Options) cacheRoot() (string, error) {
	if o.Dir != "" {
		return filepath.Abs(o.Dir)
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("toolchain cache dir: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "orchd-harness", "toolchain"), nil
}

// CacheBin is the directory a pinned version is built into.
func (o Options) CacheBin(version string) (string, error) {
	root, err := o.cacheRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "containerd-"+version, "bin"), nil
}

// ErrNotFound marks a toolchain that is not present (and was not built).
var ErrNotFound = errors.New("toolchain not found")

// Rule says, for --containerd want, which toolchain Resolve picks: every
// harness verb prints it at start, so the one default rule is visible.
func Rule(want string) string {
	switch {
	case want == "":
		return fmt.Sprintf("--containerd not set: $%s when set, else the staged %s, else the system containerd, else build %s", EnvDir, Pinned, Pinned)
	case want == System:
		return "--containerd system: Debian's containerd and runc from PATH"
	default:
		return fmt.Sprintf("--containerd %s: the staged %s, built into the cache when missing", want, want)
	}
}

// Resolve finds the requested toolchain, building a pinned 2.x release into
// the cache when no source has it.
func Resolve(ctx context.Context, opts Options) (*Toolchain, error) {
	switch want := opts.Containerd; {
	case want == System:
		return resolveSystem(ctx)
	case want == "":
		if dir := os.Getenv(EnvDir); dir != "" {
			return fromDir(ctx, dir, SourceEnv, "")
		}
		if tc, err := findPinned(ctx, opts, Pinned); err == nil {
			return tc, nil
		}
		if tc, err := resolveSystem(ctx); err == nil {
			return tc, nil
		}
		return resolvePinned(ctx, opts, Pinned)
	case strings.HasPrefix(want, "v2."):
		return resolvePinned(ctx, opts, want)
	default:
		return nil, fmt.Errorf("toolchain %q: want %q or a 2.x version such as %q", want, System, Pinned)
	}
}

// Available lists every toolchain present without building: the system one
// and the pinned 2.x (from ORCHD_TOOLCHAIN, PATH or the cache).
func Available(ctx context.Context, opts Options) ([]*Toolchain, error) {
	var out []*Toolchain
	var errs []error
	if tc, err := resolveSystem(ctx); err == nil {
		out = append(out, tc)
	} else {
		errs = append(errs, err)
	}
	if tc, err := findPinned(ctx, opts, Pinned); err == nil {
		out = append(out, tc)
	} else {
		errs = append(errs, err)
	}
	if len(out) == 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func resolvePinned(ctx context.Context, opts Options, version string) (*Toolchain, error) {
	tc, err := findPinned(ctx, opts, version)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return tc, err
	}
	bin, err := opts.CacheBin(version)
	if err != nil {
		return nil, err
	}
	if err := build(ctx, version, bin, opts.Progress); err != nil {
		return nil, err
	}
	tc, err = fromDir(ctx, bin, SourceBuilt, version)
	if err != nil {
		return nil, fmt.Errorf("after building %s: %w", version, err)
	}
	return tc, nil
}

// findPinned looks for version in ORCHD_TOOLCHAIN, then PATH, then the cache.
func findPinned(ctx context.Context, opts Options, version string) (*Toolchain, error) {
	if dir := os.Getenv(EnvDir); dir != "" {
		if tc, err := fromDir(ctx, dir, SourceEnv, version); err == nil {
			return tc, nil
		}
	}
	if p, err := exec.LookPath(BinContainerd); err == nil {
		if tc, err := fromDir(ctx, filepath.Dir(p), SourcePath, version); err == nil {
			return tc, nil
		}
	}
	bin, err := opts.CacheBin(version)
	if err != nil {
		return nil, err
	}
	tc, err := fromDir(ctx, bin, SourceCache, version)
	if err != nil {
		return nil, fmt.Errorf("containerd %s: %w (build it with: %s)", version, ErrNotFound, GoInstallCommand(version, bin))
	}
	return tc, nil
}

// resolveSystem takes the distribution's containerd from PATH with the shim
// next to it, ignoring binaries of a pinned 2.x build.
func resolveSystem(ctx context.Context) (*Toolchain, error) {
	p, err := exec.LookPath(BinContainerd)
	if err != nil {
		return nil, fmt.Errorf("system containerd: %w: not on PATH (install: %s)", ErrNotFound, AptInstall)
	}
	dir := filepath.Dir(p)
	tc, err := fromDir(ctx, dir, SourcePath, "")
	if err != nil {
		return nil, fmt.Errorf("system containerd in %s: %w (install: %s)", dir, err, AptInstall)
	}
	if tc.Major() != 1 {
		// A 2.x containerd first on PATH is not the distribution's; Debian puts its own in /usr/bin.
		tc, err = fromDir(ctx, "/usr/bin", SourcePath, "")
		if err != nil || tc.Major() != 1 {
			return nil, fmt.Errorf("system containerd: %w: no containerd 1.x on PATH (install: %s)", ErrNotFound, AptInstall)
		}
	}
	tc.Name = System
	return tc, nil
}

// fromDir builds a toolchain from dir (containerd, shim, ctr) plus runc from
// dir or PATH; want, if set, must match containerd's version.
func fromDir(ctx context.Context, dir, source, want string) (*Toolchain, error) {
	tc := &Toolchain{}
	var err error
	if tc.Containerd, err = component(ctx, dir, BinContainerd, source); err != nil {
		return nil, err
	}
	if want != "" && !sameVersion(tc.Containerd.Version, want) {
		return nil, fmt.Errorf("%s is version %s, want %s: %w", tc.Containerd.Path, tc.Containerd.Version, want, ErrNotFound)
	}
	if tc.Shim, err = component(ctx, dir, BinShim, source); err != nil {
		return nil, err
	}
	if tc.Ctr, err = component(ctx, dir, BinCtr, source); err != nil {
		return nil, err
	}
	if tc.Runc, err = component(ctx, dir, BinRunc, source); err != nil {
		p, lerr := exec.LookPath(BinRunc)
		if lerr != nil {
			return nil, fmt.Errorf("runc: %w: not in %s nor on PATH (install: %s)", ErrNotFound, dir, AptRunc)
		}
		if tc.Runc, err = component(ctx, filepath.Dir(p), BinRunc, SourcePath); err != nil {
			return nil, err
		}
	}
	tc.Name = "v" + strings.TrimPrefix(baseVersion(tc.Containerd.Version), "v")
	return tc, nil
}

func component(ctx context.Context, dir, name, source string) (Component, error) {
	p := filepath.Join(dir, name)
	st, err := os.Stat(p)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return Component{}, fmt.Errorf("%s: %w in %s", name, ErrNotFound, dir)
	}
	v, err := version(ctx, p)
	if err != nil {
		return Component{}, err
	}
	return Component{Name: name, Path: p, Version: v, Source: source}, nil
}

var versionRE = regexp.MustCompile(`\bv?[0-9]+\.[0-9]+\.[0-9]+[^\s]*`)

// version runs "bin --version" (-v for the shim) and returns the first version-looking token.
func version(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	flag := "--version"
	if filepath.Base(bin) == BinShim {
		flag = "-v" // the shim's flag package knows only -v
	}
	out, err := exec.CommandContext(ctx, bin, flag).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", bin, err, strings.TrimSpace(string(out)))
	}
	// Skip tokens inside the module path ("github.com/containerd/containerd/v2").
	for _, f := range strings.Fields(string(out)) {
		if strings.Contains(f, "/") {
			continue
		}
		if m := versionRE.FindString(f); m != "" && m == f {
			return m, nil
		}
	}
	return "", fmt.Errorf("%s --version: no version in %q", bin, strings.TrimSpace(string(out)))
}

// baseVersion strips build metadata: "2.2.1+unknown" -> "2.2.1", "1.6.20~ds1" -> "1.6.20".
func baseVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "+~-"); i >= 0 {
		v = v[:i]
	}
	return v
}

func sameVersion(got, want string) bool { return baseVersion(got) == baseVersion(want) }

// build runs go install for the pinned version into bin, holding a lock so
// concurrent test binaries do not build twice, and reports elapsed time.
func build(ctx context.Context, version, bin string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("build %s: %w", version, err)
	}
	lock, err := os.OpenFile(filepath.Join(filepath.Dir(bin), ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("build %s: lock: %w", version, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(progress, "waiting for another build of containerd %s in %s\n", version, bin)
		if err := flockCtx(ctx, lock); err != nil {
			return fmt.Errorf("build %s: wait for lock: %w", version, err)
		}
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck // released on close anyway
	// Another process may have finished the build while we waited.
	if _, err := fromDir(ctx, bin, SourceCache, version); err == nil {
		return nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("build containerd %s: go not on PATH (install Go, then: %s): %w", version, GoInstallCommand(version, bin), err)
	}
	cmd := exec.CommandContext(ctx, goBin, append([]string{"install"}, goPackages(version)...)...)
	cmd.Dir = filepath.Dir(bin) // outside any module so @version resolves on its own
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=", "GOWORK=off")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	fmt.Fprintf(progress, "building containerd %s into %s (about 4 min cold)\n", version, bin)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("build containerd %s: %w", version, err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waited := make(chan error, 1)
	go func() { err := cmd.Wait(); pw.Close(); waited <- err }()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	var tail []string
	for lines != nil {
		select {
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			tail = append(tail, l)
			fmt.Fprintf(progress, "  %s\n", l)
		case <-tick.C:
			fmt.Fprintf(progress, "building containerd %s (about 4 min cold)... %s\n", version, time.Since(start).Round(time.Second))
		}
	}
	if err := <-waited; err != nil {
		return fmt.Errorf("build containerd %s (%s): %w: %s", version, GoInstallCommand(version, bin), err, strings.Join(tail, "\n"))
	}
	fmt.Fprintf(progress, "built containerd %s in %s\n", version, time.Since(start).Round(time.Second))
	return nil
}

// flockCtx blocks on the lock in a goroutine so ctx can abandon the wait.
func flockCtx(ctx context.Context, f *os.File) error {
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StageCommand is the command that stages toolchain name ("system" or a
// pinned 2.x version).
func StageCommand(name string) string {
	if name == System {
		return AptInstall + " && go run ./cmd/orchd-harness stage --containerd system"
	}
	return "go run ./cmd/orchd-harness stage --containerd " + name
}

// Staged returns the named toolchain only when it is already staged: a run
// that asks for one by name never builds it behind the caller's back, and a
// missing one is an error naming the command that stages it.
func Staged(ctx context.Context, opts Options) (*Toolchain, error) {
	var tc *Toolchain
	var err error
	switch want := opts.Containerd; {
	case want == System:
		tc, err = resolveSystem(ctx)
	case strings.HasPrefix(want, "v2."):
		tc, err = findPinned(ctx, opts, want)
	default:
		return nil, fmt.Errorf("toolchain %q: want %q or a 2.x version such as %q", want, System, Pinned)
	}
	if err != nil {
		return nil, fmt.Errorf("toolchain %s is not staged: %w\nstage it with: %s", opts.Containerd, err, StageCommand(opts.Containerd))
	}
	return tc, nil
}

// Matrix returns the toolchains a conformance matrix runs on: Debian's
// containerd 1.6 ("system") and the pinned 2.x. It never narrows to what
// happens to be staged: either one missing is an error naming the command
// that stages it.
func Matrix(ctx context.Context, opts Options) ([]*Toolchain, error) {
	var out []*Toolchain
	var errs []error
	for _, name := range []string{System, Pinned} {
		o := opts
		o.Containerd = name
		tc, err := Staged(ctx, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, tc)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("toolchain matrix: %w", errors.Join(errs...))
	}
	return out, nil
}

// WriteTable prints COMPONENT VERSION PATH SOURCE of each toolchain, with a
// leading TOOLCHAIN column when there are several (one: a title line).
func WriteTable(w io.Writer, tcs []*Toolchain) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	many := len(tcs) > 1
	if many {
		fmt.Fprint(tw, "TOOLCHAIN\t")
	} else if len(tcs) == 1 {
		fmt.Fprintf(w, "toolchain %s\n", tcs[0].Name)
	}
	fmt.Fprintln(tw, "COMPONENT\tVERSION\tPATH\tSOURCE")
	for _, tc := range tcs {
		for _, c := range tc.Components() {
			if many {
				fmt.Fprintf(tw, "%s\t", tc.Name)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Version, c.Path, c.Source)
		}
	}
	return tw.Flush()
}
