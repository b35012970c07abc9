// Package images builds the fixture images as OCI image layouts, in Go with
// the image-spec types: no docker, no registry. Every image carries the probe
// (fixtures/probe) at /probe.
//
// Images (one layout directory each under the output dir):
//
//	probe         /probe, a minimal /etc, /tmp; Entrypoint ["/probe"], Cmd ["sleep","forever"]
//	probe-user    probe plus user app (1234:1234) with /home/app; config User "app"
//	probe-layers  probe plus two layers under /data: the second whites out
//	              /data/old.txt and makes /data/dir opaque, so unpacking must honor whiteouts
//
// Each layout's index.json names its manifest with the full reference
// (e.g. "orchd.test/probe:latest") in both org.opencontainers.image.ref.name
// and io.containerd.image.name. Importing a tar of the layout (see WriteTar)
// therefore needs no naming flags:
//
//	ctr -n NS images import probe.tar             # containerd 1.6 and 2.x
//	client.Import(ctx, tarReader)                 # containerd v2 Go client
//
// Both name the image "orchd.test/probe:latest". (ctr's --base-name and
// --index-name are only needed for archives without these annotations.)
// Builds are reproducible: the same probe binary gives the same digests.
package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/harness/gobuild"
)

// Image names.
const (
	Probe       = "probe"
	ProbeUser   = "probe-user"
	ProbeLayers = "probe-layers"
)

// RefDomain is the registry part of the fixture images' references. It is
// not resolvable: the images only ever come from a layout or a local registry.
const RefDomain = "orchd.test"

// Names lists every fixture image in build order.
func Names() []string { return []string{Probe, ProbeUser, ProbeLayers} }

// Ref is the reference a fixture image is imported under.
func Ref(name string) string { return RefDomain + "/" + name + ":latest" }

// Facts of the fixture images that tests assert against.
const (
	AppUser = "app"
	AppUID  = 1234
	AppGID  = 1234
	AppHome = "/home/app"
	// DefaultPath is the PATH in every image's config.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// Hostname is the content of /etc/hostname.
	Hostname = "probe"
)

// Paths in probe-layers after correct unpacking.
var (
	LayersPresent = []string{"/data/keep.txt", "/data/new.txt", "/data/dir/z"}
	LayersAbsent  = []string{"/data/old.txt", "/data/dir/x", "/data/dir/sub"}
)

// Layout is one built image.
type Layout struct {
	Name           string        `json:"name"`
	Dir            string        `json:"dir"`
	Ref            string        `json:"ref"`
	ManifestDigest digest.Digest `json:"manifest_digest"`
	ConfigDigest   digest.Digest `json:"config_digest"`
	Platform       string        `json:"platform"`
}

// Set is the result of Build.
type Set struct {
	Dir         string   `json:"dir"`
	ProbeBinary string   `json:"probe_binary"`
	Layouts     []Layout `json:"layouts"`
}

// Get returns the layout named name.
func (s *Set) Get(name string) (Layout, error) {
	for _, l := range s.Layouts {
		if l.Name == name {
			return l, nil
		}
	}
	return Layout{}, fmt.Errorf("fixture image %q not built (have %d images in %s)", name, len(s.Layouts), s.Dir)
}

type options struct {
	probeBinary string
	moduleRoot  string
	cacheDir    string
	arch        string
	names       []string
	log         *slog.Logger
}

// Option configures Build.
type Option func(*options)

// WithProbeBinary uses a prebuilt static probe instead of compiling one.
func WithProbeBinary(path string) Option { return func(o *options) { o.probeBinary = path } }

// WithModuleRoot sets the source tree the probe is compiled from.
func WithModuleRoot(dir string) Option { return func(o *options) { o.moduleRoot = dir } }

// WithCacheDir sets where compiled probes are cached
// (default: the user cache dir + orchd-harness/probe).
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithArch sets the image architecture (default: the running one).
func WithArch(arch string) Option { return func(o *options) { o.arch = arch } }

// WithNames builds only the named images.
func WithNames(names ...string) Option { return func(o *options) { o.names = names } }

// WithLogger sets the logger for progress lines.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// DefaultCacheDir is where compiled probes are kept by default.
func DefaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("probe cache dir: %w", err)
	}
	return filepath.Join(base, "orchd-harness", "probe"), nil
}

// Build writes the fixture images as OCI layouts into outDir/<name>,
// replacing layouts already there.
func Build(ctx context.Context, outDir string, opts ...Option) (*Set, error) {
	o := options{arch: runtime.GOARCH, names: Names(), log: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	for _, n := range o.names {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("build images: unknown image %q (known: %v)", n, Names())
		}
	}
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return nil, fmt.Errorf("build images: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("build images: %w", err)
	}

	bin := o.probeBinary
	if bin == "" {
		if o.moduleRoot == "" {
			if o.moduleRoot, err = gobuild.ModuleRoot(ctx); err != nil {
				return nil, fmt.Errorf("build images: %w", err)
			}
		}
		if o.cacheDir == "" {
			if o.cacheDir, err = DefaultCacheDir(); err != nil {
				return nil, fmt.Errorf("build images: %w", err)
			}
		}
		started := time.Now()
		if bin, err = BuildProbe(ctx, o.moduleRoot, o.cacheDir, o.arch); err != nil {
			return nil, fmt.Errorf("build images: %w", err)
		}
		o.log.Info("probe ready", "binary", bin, "took", time.Since(started).Round(time.Millisecond))
	}
	probe, err := readAll(bin)
	if err != nil {
		return nil, fmt.Errorf("build images: read probe: %w", err)
	}
	defs, err := definitions(probe, o.arch)
	if err != nil {
		return nil, fmt.Errorf("build images: %w", err)
	}

	set := &Set{Dir: outDir, ProbeBinary: bin}
	for _, name := range o.names {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("build images: %w", err)
		}
		l, err := writeImage(outDir, defs[name])
		if err != nil {
			return nil, fmt.Errorf("build images: %w", err)
		}
		o.log.Debug("built image", "name", l.Name, "ref", l.Ref, "manifest", l.ManifestDigest)
		set.Layouts = append(set.Layouts, l)
	}
	return set, nil
}

// writeImage writes def to a temporary directory next to its final place and
// swaps it in, so a reader never sees a half-written layout.
func writeImage(outDir string, def imageDef) (Layout, error) {
	final := filepath.Join(outDir, def.name)
	tmp, err := os.MkdirTemp(outDir, "."+def.name+".tmp-")
	if err != nil {
		return Layout{}, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Layout{}, err
	}
	ref := Ref(def.name)
	m, c, err := writeLayout(tmp, ref, def)
	if err != nil {
		return Layout{}, err
	}
	l := Layout{
		Name:           def.name,
		Dir:            final,
		Ref:            ref,
		ManifestDigest: m.Digest,
		ConfigDigest:   c.Digest,
		Platform:       "linux/" + def.arch,
	}
	// Builds are reproducible: an intact layout with the same manifest is
	// kept, so concurrent builders and readers of outDir never see it vanish.
	if sameLayout(final, m.Digest) {
		return l, nil
	}
	if err := os.RemoveAll(final); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Layout{}, fmt.Errorf("replace %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if sameLayout(final, m.Digest) { // another builder won the race with the same image
			return l, nil
		}
		return Layout{}, fmt.Errorf("replace %s: %w", final, err)
	}
	return l, nil
}

func sameLayout(dir string, manifest digest.Digest) bool {
	existing, err := LoadLayout(dir)
	return err == nil && existing.ManifestDigest == manifest && Verify(dir) == nil
}

// definitions builds the layers once and assembles the images from them; the
// base layer is shared, so its blob is identical in every layout.
func definitions(probe []byte, arch string) (map[string]imageDef, error) {
	base, err := buildLayer(baseEntries(probe))
	if err != nil {
		return nil, fmt.Errorf("base layer: %w", err)
	}
	user, err := buildLayer(userEntries())
	if err != nil {
		return nil, fmt.Errorf("user layer: %w", err)
	}
	data, err := buildLayer(dataEntries())
	if err != nil {
		return nil, fmt.Errorf("data layer: %w", err)
	}
	wh, err := buildLayer(whiteoutEntries())
	if err != nil {
		return nil, fmt.Errorf("whiteout layer: %w", err)
	}
	cfg := func(user string) ocispec.ImageConfig {
		return ocispec.ImageConfig{
			User:       user,
			Env:        []string{"PATH=" + DefaultPath},
			Entrypoint: []string{"/probe"},
			Cmd:        []string{"sleep", "forever"},
			WorkingDir: "/",
			Labels:     map[string]string{"org.opencontainers.image.title": "orchd fixture"},
		}
	}
	return map[string]imageDef{
		Probe:       {name: Probe, arch: arch, layers: []layer{base}, config: cfg("")},
		ProbeUser:   {name: ProbeUser, arch: arch, layers: []layer{base, user}, config: cfg(AppUser)},
		ProbeLayers: {name: ProbeLayers, arch: arch, layers: []layer{base, data, wh}, config: cfg("")},
	}, nil
}

const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
	group = "root:x:0:\n" +
		"nogroup:x:65534:\n"
)

func baseEntries(probe []byte) []entry {
	return []entry{
		{name: "probe", mode: 0o755, body: probe},
		dir("etc", 0o755),
		file("etc/passwd", 0o644, passwd),
		file("etc/group", 0o644, group),
		file("etc/hosts", 0o644, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
		file("etc/resolv.conf", 0o644, "nameserver 127.0.0.1\n"),
		file("etc/hostname", 0o644, Hostname+"\n"),
		file("etc/nsswitch.conf", 0o644, "passwd: files\ngroup: files\nhosts: files dns\n"),
		dir("tmp", 0o1777),
		dir("root", 0o700),
		dir("proc", 0o555),
		dir("sys", 0o555),
		dir("dev", 0o755),
	}
}

func userEntries() []entry {
	home := dir("home/app", 0o755)
	home.uid, home.gid = AppUID, AppGID
	return []entry{
		dir("etc", 0o755),
		file("etc/passwd", 0o644, passwd+fmt.Sprintf("%s:x:%d:%d:app:%s:/sbin/nologin\n", AppUser, AppUID, AppGID, AppHome)),
		file("etc/group", 0o644, group+fmt.Sprintf("%s:x:%d:\n", AppUser, AppGID)),
		dir("home", 0o755),
		home,
	}
}

func dataEntries() []entry {
	return []entry{
		dir("data", 0o755),
		file("data/old.txt", 0o644, "old\n"),
		file("data/keep.txt", 0o644, "keep\n"),
		dir("data/dir", 0o755),
		file("data/dir/x", 0o644, "x\n"),
		dir("data/dir/sub", 0o755),
		file("data/dir/sub/y", 0o644, "y\n"),
	}
}

func whiteoutEntries() []entry {
	return []entry{
		dir("data", 0o755),
		whiteout("data/old.txt"),
		dir("data/dir", 0o755),
		opaque("data/dir"),
		file("data/dir/z", 0o644, "z\n"),
		file("data/new.txt", 0o644, "new\n"),
	}
}

// Load reads the layouts Build wrote into dir (each subdirectory with an
// index.json whose first entry names a fixture ref).
func Load(dir string) (*Set, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("load images: %w", err)
	}
	set := &Set{Dir: dir}
	for _, name := range Names() {
		l, err := LoadLayout(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load images: %w", err)
		}
		set.Layouts = append(set.Layouts, l)
	}
	if len(set.Layouts) == 0 {
		return nil, fmt.Errorf("load images: no fixture layouts in %s (build them with: orchd-harness images --out %s)", dir, dir)
	}
	return set, nil
}

// LoadLayout describes the single-image layout in dir from its index.json
// and manifest.
func LoadLayout(dir string) (Layout, error) {
	var idx ocispec.Index
	if err := readJSON(filepath.Join(dir, ocispec.ImageIndexFile), &idx); err != nil {
		return Layout{}, fmt.Errorf("layout %s: %w", dir, err)
	}
	if len(idx.Manifests) != 1 {
		return Layout{}, fmt.Errorf("layout %s: %d index entries, want 1", dir, len(idx.Manifests))
	}
	md := idx.Manifests[0]
	raw, err := readBlob(dir, md)
	if err != nil {
		return Layout{}, fmt.Errorf("layout %s: %w", dir, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return Layout{}, fmt.Errorf("layout %s: manifest: %w", dir, err)
	}
	l := Layout{
		Name:           filepath.Base(dir),
		Dir:            dir,
		Ref:            md.Annotations[ocispec.AnnotationRefName],
		ManifestDigest: md.Digest,
		ConfigDigest:   m.Config.Digest,
	}
	if md.Platform != nil {
		l.Platform = md.Platform.OS + "/" + md.Platform.Architecture
	}
	return l, nil
}

// WriteTable prints NAME REF DIR DIGEST, one layout a line.
func (s *Set) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tREF\tDIR\tDIGEST")
	for _, l := range s.Layouts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l.Name, l.Ref, l.Dir, l.ManifestDigest)
	}
	return tw.Flush()
}
