// Package version reports what a binary was built from: the module version,
// the VCS commit and the Go version, read from the build info Go embeds.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// commit is set at link time when the build has no VCS stamp (GOFLAGS
// -buildvcs=false, a source tarball): -ldflags "-X <this package>.commit=REV".
// It is never written at run time.
var commit string

// Info is one binary's build.
type Info struct {
	Version string // module version, "(devel)" for a build from a checkout
	Commit  string // VCS revision ("+dirty" when built from a modified tree), "unknown" without VCS info
	Go      string
	// Deps maps a module path asked for to its version ("" when not linked).
	Deps map[string]string
}

// Read returns the running binary's Info, with the versions of deps.
func Read(deps ...string) Info {
	in := Info{Version: "(devel)", Commit: "unknown", Go: "unknown", Deps: map[string]string{}}
	if commit != "" {
		in.Commit = commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	in.Go = bi.GoVersion
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && in.Commit != "unknown" {
		in.Commit += "+dirty"
	}
	for _, d := range deps {
		in.Deps[d] = ""
		for _, m := range bi.Deps {
			if m.Path == d {
				in.Deps[d] = m.Version
			}
		}
	}
	return in
}

// String is the --version output: "<name> <version>", then commit, Go
// version and each dependency on its own line.
func (in Info) String(name string, deps ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\ncommit: %s\ngo: %s\n", name, in.Version, in.Commit, in.Go)
	for _, d := range deps {
		v := in.Deps[d]
		if v == "" {
			v = "not linked"
		}
		fmt.Fprintf(&b, "%s: %s\n", d, v)
	}
	return b.String()
}
