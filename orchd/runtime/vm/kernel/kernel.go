// Package kernel stages what the vm runtime boots: a Debian kernel image and
// its module tree, fetched with apt-get download and unpacked with dpkg -x into a
// cache directory, so no kernel is ever installed on the host.
package kernel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Env names that point the vm runtime at an explicit kernel.
const (
	EnvKernel  = "ORCHD_KERNEL"
	EnvModules = "ORCHD_KERNEL_MODULES"
)

// AptHint is how to get the host tools StageKernel needs.
const AptHint = "apt-get install -y apt dpkg"

// Kernel is a bootable kernel and the module tree that belongs to it.
type Kernel struct {
	Vmlinuz    string `json:"vmlinuz"`
	ModulesDir string `json:"modules_dir"` // .../lib/modules/<version>
	Version    string `json:"version"`
	Package    string `json:"package,omitempty"`
}

// Validate checks that the kernel and its modules.dep exist.
func (k Kernel) Validate() error {
	if _, err := os.Stat(k.Vmlinuz); err != nil {
		return fmt.Errorf("kernel image: %w", err)
	}
	if _, err := os.Stat(filepath.Join(k.ModulesDir, "modules.dep")); err != nil {
		return fmt.Errorf("kernel modules: %w", err)
	}
	return nil
}

// DefaultDir is the kernel cache: ~/.cache/orchd-harness/kernel.
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("kernel cache dir: %w", err)
	}
	return filepath.Join(d, "orchd-harness", "kernel"), nil
}

const markerName = "kernel.json"

// FromEnv returns the kernel named by ORCHD_KERNEL / ORCHD_KERNEL_MODULES, if set.
func FromEnv() (Kernel, bool, error) {
	vmlinuz := os.Getenv(EnvKernel)
	if vmlinuz == "" {
		return Kernel{}, false, nil
	}
	mods := os.Getenv(EnvModules)
	if mods == "" {
		return Kernel{}, true, fmt.Errorf("%s is set but %s is not: point it at lib/modules/<version> of the same kernel", EnvKernel, EnvModules)
	}
	k := Kernel{Vmlinuz: vmlinuz, ModulesDir: mods, Version: filepath.Base(mods)}
	return k, true, k.Validate()
}

// Cached returns a kernel previously staged in dir (DefaultDir when empty).
func Cached(dir string) (Kernel, bool, error) {
	if dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return Kernel{}, false, err
		}
		dir = d
	}
	b, err := os.ReadFile(filepath.Join(dir, markerName))
	if errors.Is(err, os.ErrNotExist) {
		return Kernel{}, false, nil
	}
	if err != nil {
		return Kernel{}, false, fmt.Errorf("read kernel marker: %w", err)
	}
	var k Kernel
	if err := json.Unmarshal(b, &k); err != nil {
		return Kernel{}, false, fmt.Errorf("parse %s: %w", filepath.Join(dir, markerName), err)
	}
	if err := k.Validate(); err != nil {
		return Kernel{}, false, nil
	}
	return k, true, nil
}

// Resolve returns ORCHD_KERNEL(+_MODULES) when set, else a staged kernel (staging
// it when absent). Progress lines go to progress (may be nil).
func Resolve(ctx context.Context, progress io.Writer) (Kernel, error) {
	if k, ok, err := FromEnv(); ok {
		return k, err
	}
	return StageKernel(ctx, "", progress)
}

// StageKernel makes sure dir (DefaultDir when empty) holds the newest Debian
// linux-image-6.1.0-*-amd64 package unpacked, and returns its paths.
func StageKernel(ctx context.Context, dir string, progress io.Writer) (Kernel, error) {
	if progress == nil {
		progress = io.Discard
	}
	if dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return Kernel{}, err
		}
		dir = d
	}
	if k, ok, err := Cached(dir); err != nil || ok {
		if ok {
			fmt.Fprintf(progress, "kernel: cached %s (%s)\n", k.Version, k.Vmlinuz)
		}
		return k, err
	}
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			return Kernel{}, fmt.Errorf("stage kernel: %s not found (%s): %w", tool, AptHint, err)
		}
	}
	fmt.Fprintln(progress, "kernel: looking for the newest linux-image-6.1.0-*-amd64 package")
	pkg, err := newestPackage(ctx)
	if err != nil {
		return Kernel{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("stage kernel: %w", err)
	}
	work, err := os.MkdirTemp(dir, ".stage-")
	if err != nil {
		return Kernel{}, fmt.Errorf("stage kernel: %w", err)
	}
	defer os.RemoveAll(work)
	fmt.Fprintf(progress, "kernel: apt-get download %s\n", pkg)
	if err := run(ctx, work, "apt-get", "download", pkg); err != nil {
		return Kernel{}, fmt.Errorf("stage kernel: apt-get download %s: %w", pkg, err)
	}
	debs, _ := filepath.Glob(filepath.Join(work, "*.deb"))
	if len(debs) != 1 {
		return Kernel{}, fmt.Errorf("stage kernel: expected one .deb in %s, found %d", work, len(debs))
	}
	root := filepath.Join(dir, pkg)
	_ = os.RemoveAll(root)
	fmt.Fprintf(progress, "kernel: dpkg -x %s\n", filepath.Base(debs[0]))
	if err := run(ctx, work, "dpkg", "-x", debs[0], root); err != nil {
		return Kernel{}, fmt.Errorf("stage kernel: dpkg -x: %w", err)
	}
	vmlinuzes, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vmlinuzes) != 1 {
		return Kernel{}, fmt.Errorf("stage kernel: expected one boot/vmlinuz-* in %s, found %d", root, len(vmlinuzes))
	}
	version := strings.TrimPrefix(filepath.Base(vmlinuzes[0]), "vmlinuz-")
	modules := filepath.Join(root, "lib", "modules", version)
	if _, err := os.Stat(filepath.Join(modules, "modules.dep")); err != nil {
		// Packages ship modules.dep only after depmod runs; build it ourselves.
		fmt.Fprintln(progress, "kernel: writing modules.dep")
		if err := WriteModulesDep(modules); err != nil {
			return Kernel{}, err
		}
	}
	k := Kernel{Vmlinuz: vmlinuzes[0], ModulesDir: modules, Version: version, Package: pkg}
	b, _ := json.MarshalIndent(k, "", "  ")
	tmp := filepath.Join(dir, markerName+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return Kernel{}, fmt.Errorf("stage kernel: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, markerName)); err != nil {
		return Kernel{}, fmt.Errorf("stage kernel: %w", err)
	}
	fmt.Fprintf(progress, "kernel: staged %s at %s\n", version, root)
	return k, nil
}

var pkgRe = regexp.MustCompile(`^linux-image-6\.1\.0-(\d+)-amd64(-unsigned)?$`)

// newestPackage picks the highest ABI number that has an installable candidate,
// preferring the signed package over -unsigned (same kernel, either boots).
func newestPackage(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "search", "--names-only", `^linux-image-6\.1\.0-[0-9]+-amd64`).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache search: %w", err)
	}
	type cand struct {
		name     string
		abi      int
		unsigned bool
	}
	var cands []cand
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		m := pkgRe.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		abi, _ := strconv.Atoi(m[1])
		cands = append(cands, cand{name, abi, m[2] != ""})
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].abi != cands[j].abi {
			return cands[i].abi > cands[j].abi
		}
		return !cands[i].unsigned && cands[j].unsigned
	})
	for _, c := range cands {
		pol, err := exec.CommandContext(ctx, "apt-cache", "policy", c.name).Output()
		if err != nil {
			continue
		}
		if bytes.Contains(pol, []byte("Candidate:")) && !bytes.Contains(pol, []byte("Candidate: (none)")) {
			return c.name, nil
		}
	}
	return "", errors.New("stage kernel: no linux-image-6.1.0-*-amd64 package available; run `apt-get update`")
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
