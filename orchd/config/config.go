// Package config resolves orchd's settings: flag > environment (ORCH_*) > .orchrc
// (project dir, then $HOME) > default.
package config

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/orchd/orchd/orchd/platform/systemd"
)

// Config is orchd's resolved configuration.
type Config struct {
	ProjectDir string
	Orchfile   string
	Overlays   []string
	StateDir   string
	DataDir    string
	Runtime    string
	Platform   string
	Namespace  string
	Scope      string // "user" or "system"
	// Address is the containerd socket ("" = the runtime's default).
	Address string
	Args    map[string]string
	Verbose bool
	Quiet   bool
	// Sources says where each setting came from (flag, env, file:line, default).
	Sources map[string]string
}

// Runtimes and platforms orchd knows by name.
var (
	knownRuntimes  = []string{"bare", "containerd", "vm"}
	knownPlatforms = []string{"orchdi", "systemd", "launchd"}
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// Flags are the global flags; bind them once to a command's persistent flag set.
type Flags struct {
	fs       *pflag.FlagSet
	project  string
	orchfile string
	overlays []string
	stateDir string
	dataDir  string
	runtime  string
	platform string
	ns       string
	address  string
	user     bool
	system   bool
	args     []string
	verbose  bool
	quiet    bool
	detect   func(scope string) string
}

// Bind registers the global flags on fs.
func Bind(fs *pflag.FlagSet) *Flags {
	f := &Flags{fs: fs}
	fs.StringVar(&f.project, "project-dir", "", "project directory (ORCH_PROJECT; default: current directory)")
	fs.StringVar(&f.orchfile, "orchfile", "", "Orchfile path (ORCH_ORCHFILE; default: <project>/Orchfile)")
	fs.StringArrayVar(&f.overlays, "overlay", nil, "overlay Orchfile, applied in order (repeatable)")
	fs.StringVar(&f.stateDir, "state-dir", "", "state directory (ORCH_STATE_DIR; default: ~/.orch)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory, ${ORCH_DATA} and the home of named volumes (ORCH_DATA; default: <state>/data/<namespace>)")
	fs.StringVar(&f.runtime, "runtime", "", "runtime: bare, containerd or vm (ORCH_RUNTIME; default: bare)")
	fs.StringVar(&f.platform, "platform", "", "platform: orchdi, systemd or launchd (ORCH_PLATFORM)")
	fs.StringVar(&f.ns, "namespace", "", "namespace, a DNS label (ORCH_NAMESPACE; default: the project directory's name made valid, orch if nothing remains)")
	fs.StringVar(&f.address, "address", "", "containerd socket (ORCHD_CONTAINERD_SOCKET, CONTAINERD_ADDRESS; default: /run/containerd/containerd.sock)")
	fs.BoolVar(&f.user, "user", false, "user scope (ORCH_SCOPE=user)")
	fs.BoolVar(&f.system, "system", false, "system scope (ORCH_SCOPE=system)")
	fs.StringArrayVar(&f.args, "arg", nil, "Orchfile ARG override name=value (repeatable)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "debug logging on stderr")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "print only errors: no progress lines, no warnings")
	return f
}

// Env is the process environment as a lookup function (os.LookupEnv in production).
type Env func(string) (string, bool)

// Load resolves the configuration from the bound flags, env and .orchrc files.
func (f *Flags) Load(env Env) (*Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	home, _ := env("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	c := &Config{Args: map[string]string{}, Sources: map[string]string{}, Verbose: f.verbose, Quiet: f.quiet}
	if f.user && f.system {
		return nil, errors.New("--user and --system are mutually exclusive")
	}

	// The project dir decides which .orchrc is read, so it is resolved first.
	rc := newRCSet()
	project, src := f.pick("project-dir", f.project, env, "ORCH_PROJECT", rc, "")
	if project == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("resolve project dir: %w", err)
		}
		project, src = wd, "default"
	}
	project, err := filepath.Abs(project)
	if err != nil {
		return nil, fmt.Errorf("resolve project dir: %w", err)
	}
	c.ProjectDir, c.Sources["project-dir"] = project, src
	var errs []error
	for _, p := range []string{filepath.Join(project, ".orchrc"), filepath.Join(home, ".orchrc")} {
		if home == "" && p == filepath.Join(home, ".orchrc") {
			continue
		}
		if err := rc.load(p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	stateDefault := filepath.Join(home, ".orch")
	c.StateDir, c.Sources["state-dir"] = f.pick("state-dir", f.stateDir, env, "ORCH_STATE_DIR", rc, stateDefault)
	c.Runtime, c.Sources["runtime"] = f.pick("runtime", f.runtime, env, "ORCH_RUNTIME", rc, "bare")
	// Each project gets its own namespace unless told otherwise, so two projects
	// never see, replace or stop each other's services.
	c.Namespace, c.Sources["namespace"] = f.pick("namespace", f.ns, env, "ORCH_NAMESPACE", rc, ProjectNamespace(project))
	c.DataDir, c.Sources["data-dir"] = f.pick("data-dir", f.dataDir, env, "ORCH_DATA", rc, filepath.Join(c.StateDir, "data", c.Namespace))
	// Both the project's own variable and containerd's usual one select the socket.
	addrEnv := "ORCHD_CONTAINERD_SOCKET"
	if v, ok := env(addrEnv); !ok || v == "" {
		addrEnv = "CONTAINERD_ADDRESS"
	}
	c.Address, c.Sources["address"] = f.pick("address", f.address, env, addrEnv, rc, "")
	orchfile, osrc := f.pick("orchfile", f.orchfile, env, "ORCH_ORCHFILE", rc, filepath.Join(project, "Orchfile"))
	c.Orchfile, c.Sources["orchfile"] = absUnder(project, orchfile, osrc), osrc

	scope := ""
	switch {
	case f.user:
		scope = "user"
	case f.system:
		scope = "system"
	}
	c.Scope, c.Sources["scope"] = f.pickValue(scope, scope != "", env, "ORCH_SCOPE", rc, "scope", "user")
	// The default platform depends on the scope: systemd only when the
	// scope's manager answers. Probed only when nothing else chose one.
	c.Platform, c.Sources["platform"] = f.pick("platform", f.platform, env, "ORCH_PLATFORM", rc, "")
	if c.Platform == "" {
		detect := f.detect
		if detect == nil {
			detect = DefaultPlatform
		}
		c.Platform = detect(c.Scope)
	}

	if f.fs != nil && f.fs.Changed("overlay") {
		c.Overlays, c.Sources["overlay"] = absAll("", f.overlays), "flag"
	} else if vs := rc.all("overlay"); len(vs) > 0 {
		c.Overlays, c.Sources["overlay"] = absAll(project, vs), rc.where("overlay")
	}

	for _, a := range append(rc.all("arg"), f.args...) {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--arg %q: want name=value", a)
		}
		c.Args[k] = v
	}

	for _, p := range []*string{&c.StateDir, &c.DataDir} {
		if *p, err = filepath.Abs(expandHome(*p, home)); err != nil {
			return nil, err
		}
	}
	return c, c.Validate()
}

// Validate checks the resolved values.
func (c *Config) Validate() error {
	var errs []error
	if !ValidNamespace(c.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q (from %s): must be a DNS label: lowercase letters, digits and '-', 1-63 chars, starting and ending with a letter or digit", c.Namespace, c.Sources["namespace"]))
	}
	if !contains(knownRuntimes, c.Runtime) {
		errs = append(errs, fmt.Errorf("runtime %q (from %s): want one of %s", c.Runtime, c.Sources["runtime"], strings.Join(knownRuntimes, ", ")))
	}
	if !contains(knownPlatforms, c.Platform) {
		errs = append(errs, fmt.Errorf("platform %q (from %s): want one of %s", c.Platform, c.Sources["platform"], strings.Join(knownPlatforms, ", ")))
	}
	if c.Scope != "user" && c.Scope != "system" {
		errs = append(errs, fmt.Errorf("scope %q (from %s): want user or system", c.Scope, c.Sources["scope"]))
	}
	return errors.Join(errs...)
}

// DefaultNamespace is the namespace of a project whose directory name leaves
// nothing valid.
const DefaultNamespace = "orch"

// ProjectNamespace derives a namespace from a project directory's name, as
// docker compose derives a project name: lowercased, '_', '.' and spaces
// become '-', anything else outside [a-z0-9-] is dropped, leading and trailing
// '-' trimmed, at most 63 characters; DefaultNamespace when nothing remains.
func ProjectNamespace(projectDir string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(filepath.Base(filepath.Clean(projectDir))) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == '_', r == '.', r == ' ':
			b.WriteRune('-')
		}
	}
	ns := strings.Trim(b.String(), "-")
	if len(ns) > 63 {
		ns = strings.TrimRight(ns[:63], "-")
	}
	if !ValidNamespace(ns) {
		return DefaultNamespace
	}
	return ns
}

// ValidNamespace reports whether ns is a DNS label, the form every path and
// containerd namespace built from it relies on.
func ValidNamespace(ns string) bool { return dnsLabel.MatchString(ns) }

// Files returns the Orchfile followed by the overlays.
func (c *Config) Files() []string { return append([]string{c.Orchfile}, c.Overlays...) }

// DefaultPlatform is launchd on macOS, systemd where PID 1 is systemd and the
// manager of scope answers on D-Bus, else orchdi.
func DefaultPlatform(scope string) string {
	return detectPlatform(context.Background(), runtime.GOOS, systemd.ThisHost(), scope)
}

func detectPlatform(ctx context.Context, goos string, h systemd.Host, scope string) string {
	switch {
	case goos == "darwin":
		return "launchd"
	case goos == "linux" && systemd.Available(ctx, h, scope) == nil:
		return "systemd"
	}
	return "orchdi"
}

// WithDetector replaces the default-platform probe (tests: a host without
// the probe's side effects).
func (f *Flags) WithDetector(detect func(scope string) string) *Flags {
	f.detect = detect
	return f
}

func (f *Flags) pick(name, flagVal string, env Env, envKey string, rc *rcSet, def string) (string, string) {
	changed := f.fs != nil && f.fs.Changed(name)
	return f.pickValue(flagVal, changed, env, envKey, rc, name, def)
}

func (f *Flags) pickValue(flagVal string, changed bool, env Env, envKey string, rc *rcSet, rcKey, def string) (string, string) {
	if changed {
		return flagVal, "flag --" + rcKey
	}
	if v, ok := env(envKey); ok && v != "" {
		return v, "env " + envKey
	}
	if v, ok := rc.get(rcKey); ok {
		return v, rc.where(rcKey)
	}
	return def, "default"
}

func absUnder(base, p, src string) string {
	if filepath.IsAbs(p) {
		return p
	}
	if strings.HasPrefix(src, "flag") || strings.HasPrefix(src, "env") {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
	}
	return filepath.Join(base, p)
}

func absAll(base string, ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if base != "" {
			out[i] = absUnder(base, p, "rc")
		} else {
			out[i] = absUnder("", p, "flag")
		}
	}
	return out
}

func expandHome(p, home string) string {
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// rcKeys are the settings an .orchrc may hold ("key = value" lines).
var rcKeys = []string{"project-dir", "orchfile", "overlay", "state-dir", "data-dir", "runtime", "platform", "namespace", "address", "scope", "arg"}

type rcEntry struct{ value, where string }

// rcSet holds .orchrc entries; earlier files win for scalars (project before home).
type rcSet struct{ entries map[string][]rcEntry }

func newRCSet() *rcSet { return &rcSet{entries: map[string][]rcEntry{}} }

func (r *rcSet) load(path string) error {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer fh.Close()
	var errs []error
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			errs = append(errs, fmt.Errorf("%s:%d: want \"key = value\" (keys: %s)", path, n, strings.Join(rcKeys, ", ")))
			continue
		}
		if !contains(rcKeys, k) {
			hint := ""
			if s := nearest(k, rcKeys); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, fmt.Errorf("%s:%d: unknown setting %q%s; known: %s", path, n, k, hint, strings.Join(rcKeys, ", ")))
			continue
		}
		if v == "" {
			errs = append(errs, fmt.Errorf("%s:%d: %s has no value", path, n, k))
			continue
		}
		r.entries[k] = append(r.entries[k], rcEntry{v, fmt.Sprintf("%s:%d", path, n)})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return errors.Join(errs...)
}

func (r *rcSet) get(k string) (string, bool) {
	if e := r.entries[k]; len(e) > 0 {
		return e[0].value, true
	}
	return "", false
}

func (r *rcSet) where(k string) string {
	if e := r.entries[k]; len(e) > 0 {
		return e[0].where
	}
	return ""
}

func (r *rcSet) all(k string) []string {
	var out []string
	for _, e := range r.entries[k] {
		out = append(out, e.value)
	}
	return out
}

// nearest returns the known key closest to s by edit distance, if close enough.
func nearest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// SortedArgs returns args as sorted name=value pairs (stable output).
func (c *Config) SortedArgs() []string {
	out := make([]string, 0, len(c.Args))
	for k, v := range c.Args {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
