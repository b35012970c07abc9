// Package container says what a service's container is, whatever runs it: the
// image reference syntax (registry names and local OCI layouts), the process
// from the image config and the service's ENTRYPOINT/CMD/ENV/WORKDIR, and the
// volumes. The containerd leaf and the vm leaf both build on it, so a service
// means the same thing under either runtime.
package container

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/shlex"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/envfile"
	"github.com/orchd/orchd/orchd/spec"
)

// LayoutScheme prefixes an image reference that names a local OCI image layout.
const LayoutScheme = "oci-layout://"

// ParseLayoutRef recognizes the FROM values that name a local OCI image layout:
// oci-layout://PATH[:TAG], or a PATH[:TAG] that starts with /, ./ or ../.
// Anything else (busybox, registry.example:5000/app:1) is a registry
// reference and ok is false. A relative PATH is against base (the project
// dir). ":TAG" is the text after the last colon that follows the last slash,
// unless the whole value names an existing path.
func ParseLayoutRef(ref, base string) (dir, tag string, ok bool) {
	rest, scheme := strings.CutPrefix(ref, LayoutScheme)
	if !scheme && !strings.HasPrefix(ref, "/") && !strings.HasPrefix(ref, "./") && !strings.HasPrefix(ref, "../") {
		return "", "", false
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return filepath.Clean(p)
		}
		return filepath.Join(base, p)
	}
	dir = rest
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		if _, err := os.Stat(abs(rest)); err != nil {
			dir, tag = rest[:i], rest[i+1:]
		}
	}
	return abs(dir), tag, true
}

// PickManifest selects the layout index entry named by tag: its ref annotation
// equals tag or ends in ":"+tag. Without a tag a single entry, else the one
// tagged "latest", is used.
func PickManifest(idx ocispec.Index, tag string) (ocispec.Descriptor, error) {
	var refs []string
	for _, m := range idx.Manifests {
		r := m.Annotations[ocispec.AnnotationRefName]
		refs = append(refs, r)
		if tag != "" && (r == tag || strings.HasSuffix(r, ":"+tag)) {
			return m, nil
		}
	}
	switch {
	case tag != "":
		return ocispec.Descriptor{}, fmt.Errorf("no manifest tagged %q (tags: %s)", tag, strings.Join(refs, ", "))
	case len(idx.Manifests) == 1:
		return idx.Manifests[0], nil
	case len(idx.Manifests) == 0:
		return ocispec.Descriptor{}, errors.New("the layout lists no manifests")
	}
	for _, m := range idx.Manifests {
		if r := m.Annotations[ocispec.AnnotationRefName]; r == "latest" || strings.HasSuffix(r, ":latest") {
			return m, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%d manifests and no tag given: use %sPATH:TAG (tags: %s)", len(idx.Manifests), LayoutScheme, strings.Join(refs, ", "))
}

// ErrNoArgs is returned when neither the image nor the service names a command.
var ErrNoArgs = errors.New("the image has no ENTRYPOINT or CMD and the service sets neither: add CMD (or ENTRYPOINT) to the service")

// Args computes the process argv: ENTRYPOINT (service, else image) plus CMD
// (service, else the image's, which a service ENTRYPOINT resets, as in Docker).
// The service's values are shell-like words; "" means not set.
func Args(cfg ocispec.ImageConfig, entrypoint, cmd string) ([]string, error) {
	e, c := cfg.Entrypoint, cfg.Cmd
	if entrypoint != "" {
		w, err := shlex.Split(entrypoint)
		if err != nil {
			return nil, fmt.Errorf("ENTRYPOINT %q: %w", entrypoint, err)
		}
		e, c = w, nil
	}
	if cmd != "" {
		w, err := shlex.Split(cmd)
		if err != nil {
			return nil, fmt.Errorf("CMD %q: %w", cmd, err)
		}
		c = w
	}
	args := append(slices.Clone(e), c...)
	if len(args) == 0 {
		return nil, ErrNoArgs
	}
	return args, nil
}

// Workdir is the process's working directory: the service's WORKDIR, relative
// to the image's when not absolute; the image's (or /) when the service sets none.
func Workdir(imageDir, workdir string) string {
	if imageDir == "" {
		imageDir = "/"
	}
	switch {
	case workdir == "":
		return imageDir
	case path.IsAbs(workdir):
		return workdir
	default:
		return path.Join(imageDir, workdir)
	}
}

// ReadEnvFiles reads ENV_FILE files in order; relative paths are against base.
func ReadEnvFiles(paths []string, base string) ([]map[string]string, error) {
	var out []map[string]string
	for _, f := range paths {
		if !filepath.IsAbs(f) {
			f = filepath.Join(base, f)
		}
		m, err := envfile.Read(f)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// ServiceEnv is what the service adds to the image's environment: ENV_FILE
// contents (in order, later files win) then ENV, as sorted KEY=value.
func ServiceEnv(files []map[string]string, env map[string]string) []string {
	merged := map[string]string{}
	for _, m := range files {
		maps.Copy(merged, m)
	}
	maps.Copy(merged, env)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(merged)) {
		out = append(out, k+"="+merged[k])
	}
	return out
}

// MergeEnv lays over onto base: a KEY=value of over replaces base's KEY in
// place, new keys are appended in over's order.
func MergeEnv(base, over []string) []string {
	out := slices.Clone(base)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(b string) bool { return strings.HasPrefix(b, k+"=") })
		if i >= 0 {
			out[i] = kv
		} else {
			out = append(out, kv)
		}
	}
	return out
}

// Mount is one VOLUME resolved to a host directory.
type Mount struct {
	Source      string // host path
	Destination string // absolute path inside the container
}

// Volumes resolves the service's VOLUMEs: a named volume is its directory under
// the data dir (contract.NamedVolume), created 0700 on first use; a host path,
// relative to the project dir, must exist. Destinations must be absolute.
func Volumes(vols []spec.Volume, dataDir, namespace, projectDir string) ([]Mount, error) {
	var out []Mount
	for _, v := range vols {
		src := v.Source
		switch {
		case v.IsNamed:
			if dataDir == "" {
				return nil, fmt.Errorf("VOLUME %s:%s: a named volume needs a data dir", v.Source, v.Destination)
			}
			src = contract.NamedVolume(dataDir, namespace, v.Source)
			if err := os.MkdirAll(src, 0o700); err != nil {
				return nil, fmt.Errorf("VOLUME %s:%s: create %s: %w", v.Source, v.Destination, src, err)
			}
		case !filepath.IsAbs(src):
			src = filepath.Join(projectDir, src)
			fallthrough
		default:
			if _, err := os.Stat(src); err != nil {
				return nil, fmt.Errorf("VOLUME %s:%s: source %s must exist (create it, or use a named volume such as data:%s): %w", v.Source, v.Destination, src, v.Destination, err)
			}
		}
		if !path.IsAbs(v.Destination) {
			return nil, fmt.Errorf("VOLUME %s:%s: the destination must be an absolute path", v.Source, v.Destination)
		}
		out = append(out, Mount{Source: src, Destination: v.Destination})
	}
	return out, nil
}
