// Package ociruntime resolves the runc-compatible binary (runc, crun, gVisor's
// runsc) that containerd's runc shim runs containers with, and places a
// wrapper when the runtime needs global flags for orchd's containers.
//
// The runc shim's options carry only a binary name (BinaryName), no
// arguments, so a runtime that needs flags gets a small wrapper script that
// adds them, as dockerd does for a runtime configured with runtimeArgs.
package ociruntime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Default is the runtime used when none is chosen.
const Default = "runc"

// Runtime is one runc-compatible runtime.
type Runtime struct {
	// Name is the runtime's name: runc, crun, runsc (the report axis).
	Name string
	// Path is the binary to run (absolute once resolved).
	Path string
	// Flags are global flags every invocation needs; Binary wraps them.
	Flags []string
	// Package is the Debian package that installs it.
	Package string
}

// known lists the runtimes the suites run on. runsc needs --network=host:
// orchd's containers share the host's network namespace, which gVisor's own
// netstack (its default) would replace with an empty sandbox network.
func known() []Runtime {
	return []Runtime{
		{Name: "runc", Package: "runc"},
		{Name: "crun", Package: "crun"},
		{Name: "runsc", Package: "runsc", Flags: []string{"--network=host"}},
	}
}

// Names lists the runtimes Lookup knows by name.
func Names() []string {
	var out []string
	for _, r := range known() {
		out = append(out, r.Name)
	}
	return out
}

// ErrUnknown is returned for a name Lookup does not know.
var ErrUnknown = errors.New("unknown OCI runtime")

// Lookup resolves a runtime by name ("" = runc) on PATH. A value with a
// slash is a binary taken as is, never wrapped again (a wrapper Binary placed
// earlier, or a runtime outside PATH); its base name names the runtime. A
// missing binary is an error that names the package to install.
func Lookup(name string) (Runtime, error) {
	if name == "" {
		name = Default
	}
	if strings.ContainsRune(name, '/') {
		base := filepath.Base(name)
		r := Runtime{Name: base, Path: name}
		if k, ok := find(base); ok {
			r.Package = k.Package
		}
		if _, err := os.Stat(name); err != nil {
			return r, fmt.Errorf("OCI runtime %s: %w", name, err)
		}
		return r, nil
	}
	r, ok := find(name)
	if !ok {
		return Runtime{}, fmt.Errorf("%w %q (known: %s)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	p, err := exec.LookPath(r.Name)
	if err != nil {
		return r, fmt.Errorf("OCI runtime %s: not on PATH (install: apt-get install -y %s)", r.Name, r.Package)
	}
	r.Path = p
	return r, nil
}

func find(name string) (Runtime, bool) {
	i := slices.IndexFunc(known(), func(r Runtime) bool { return r.Name == name })
	if i < 0 {
		return Runtime{}, false
	}
	return known()[i], true
}

// Wrapped reports whether the runtime needs a wrapper (it has flags and is
// not a wrapper already).
func (r Runtime) Wrapped() bool { return len(r.Flags) > 0 }

// Binary returns what to pass as the runc shim's BinaryName: the runtime's
// own path, or, for a runtime with flags, a wrapper script named after the
// runtime placed in dir (so its base name still names the runtime).
func (r Runtime) Binary(dir string) (string, error) {
	if !r.Wrapped() {
		return r.Path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("OCI runtime %s: wrapper dir: %w", r.Name, err)
	}
	p := filepath.Join(dir, r.Name)
	if err := os.WriteFile(p, []byte(r.script()), 0o755); err != nil {
		return "", fmt.Errorf("OCI runtime %s: write wrapper: %w", r.Name, err)
	}
	return p, nil
}

// script is the wrapper: the runtime with its flags ahead of the shim's arguments.
func (r Runtime) script() string {
	words := []string{"exec", shellQuote(r.Path)}
	for _, f := range r.Flags {
		words = append(words, shellQuote(f))
	}
	return fmt.Sprintf("#!/bin/sh\n# %s with the global flags orchd's host-network containers need\n%s \"$@\"\n", r.Name, strings.Join(words, " "))
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
