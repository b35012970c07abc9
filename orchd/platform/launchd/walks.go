package launchd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"howett.net/plist"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
)

// Launchctl runs one launchctl command and returns its combined output.
type Launchctl interface {
	Run(ctx context.Context, args ...string) ([]byte, error)
}

// execLaunchctl is /bin/launchctl.
type execLaunchctl struct{}

func (execLaunchctl) Run(ctx context.Context, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, "/bin/launchctl", args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("launchctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Platform is the launchd platform.
type Platform struct {
	scope  string
	home   string
	jobDir string
	uid    int
	goos   string
	ctl    Launchctl
}

var _ platform.Platform = (*Platform)(nil)

// Option configures the platform.
type Option func(*Platform)

// WithJobDir overrides where plists are installed.
func WithJobDir(dir string) Option { return func(p *Platform) { p.jobDir = dir } }

// WithLaunchctl replaces launchctl (tests record the calls). It also lifts
// the macOS-only check: the stand-in works anywhere.
func WithLaunchctl(l Launchctl, uid int) Option {
	return func(p *Platform) { p.ctl, p.uid, p.goos = l, uid, "darwin" }
}

// New returns the platform for scope ("user" or "system").
func New(scope string, opts ...Option) *Platform {
	if scope == "" {
		scope = "user"
	}
	home, _ := os.UserHomeDir()
	p := &Platform{scope: scope, home: home, jobDir: JobDir(scope, home), uid: os.Getuid(), goos: runtime.GOOS, ctl: execLaunchctl{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Name implements platform.Platform.
func (*Platform) Name() string { return "launchd" }

// check is the one line a non-macOS host gets.
func (p *Platform) check() error {
	if p.goos != "darwin" {
		return fmt.Errorf("platform launchd: launchd runs only on macOS (this is %s); pass --platform orchdi (or set ORCH_PLATFORM=orchdi)", p.goos)
	}
	return nil
}

// domain is launchctl's domain target of the scope.
func (p *Platform) domain() string {
	if p.scope == "system" {
		return "system"
	}
	return "gui/" + strconv.Itoa(p.uid)
}

// Tend implements platform.Platform: write plists and env files, then, in
// dependency order, bootstrap each job that is not loaded and re-bootstrap
// (bootout first) each loaded job whose plist changed.
func (p *Platform) Tend(ctx context.Context, beds contract.Beds, opts platform.TendOptions) (platform.TendResult, error) {
	var res platform.TendResult
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if beds.Platform != "launchd" {
		return res, fmt.Errorf("tend: beds are for platform %q, not launchd (plant them with --platform launchd)", beds.Platform)
	}
	if err := p.check(); err != nil {
		return res, err
	}
	l := contract.Layout{StateDir: beds.StateDir}
	if err := l.Create(); err != nil {
		return res, fmt.Errorf("tend: %w", err)
	}
	changed, plists, err := platform.WriteArtifacts(beds, KindPlist)
	if err != nil {
		return res, err
	}
	if opts.NoStart {
		return res, nil
	}
	for _, b := range order(beds.Beds) {
		named := slices.Contains(opts.Only, b.Service)
		if len(opts.Only) > 0 && !named && !requiredBy(beds.Beds, opts.Only, b.Service) {
			continue
		}
		if why := platform.SkipReason(b, named); why != "" {
			res.Skipped = append(res.Skipped, platform.Skip{Service: b.Service, Reason: why})
			fmt.Fprintf(logw, "skipped %s: %s\n", b.Service, why)
			continue
		}
		target := p.domain() + "/" + JobLabel(beds.Namespace, b.Service)
		_, printErr := p.ctl.Run(ctx, "print", target)
		loaded := printErr == nil
		switch {
		case loaded && !changed[b.Service]:
			res.Unchanged = append(res.Unchanged, b.Service)
			fmt.Fprintf(logw, "unchanged %s\n", b.Service)
			continue
		case loaded:
			if _, err := p.ctl.Run(ctx, "bootout", target); err != nil {
				return res, fmt.Errorf("tend %s: %w", b.Service, err)
			}
			res.Restarted = append(res.Restarted, b.Service)
		default:
			res.Started = append(res.Started, b.Service)
		}
		if _, err := p.ctl.Run(ctx, "bootstrap", p.domain(), plists[b.Service]); err != nil {
			return res, fmt.Errorf("tend %s: %w", b.Service, err)
		}
		fmt.Fprintf(logw, "started %s\n", b.Service)
	}
	return res, nil
}

// requiredBy reports whether service is (transitively) REQUIRED by one of only.
func requiredBy(beds []contract.Bed, only []string, service string) bool {
	byName := map[string]contract.Bed{}
	for _, b := range beds {
		byName[b.Service] = b
	}
	seen := map[string]bool{}
	var walk func(n string) bool
	walk = func(n string) bool {
		if seen[n] {
			return false
		}
		seen[n] = true
		for _, d := range byName[n].Requires {
			if d == service || walk(d) {
				return true
			}
		}
		return false
	}
	for _, n := range only {
		if walk(n) {
			return true
		}
	}
	return false
}

// jobs lists the namespace's installed jobs: plists named orchd.<ns>.*.plist
// whose X-Orchd marker names the namespace.
func (p *Platform) jobs(ns string) ([]Job, map[string]string, error) {
	paths, err := filepath.Glob(filepath.Join(p.jobDir, JobLabel(ns, "*")+".plist"))
	if err != nil {
		return nil, nil, err
	}
	var out []Job
	where := map[string]string{}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		var j Job
		if _, err := plist.Unmarshal(b, &j); err != nil || j.Orchd["namespace"] != ns || j.Label != JobLabel(ns, j.Orchd["service"]) {
			continue
		}
		out = append(out, j)
		where[j.Label] = path
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Label < out[k].Label })
	return out, where, nil
}

// Survey implements platform.Platform from `launchctl print` of each job.
func (p *Platform) Survey(ctx context.Context, env contract.Env) ([]platform.ServiceStatus, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	jobs, _, err := p.jobs(env.Namespace)
	if err != nil {
		return nil, err
	}
	var rows []platform.ServiceStatus
	for _, j := range jobs {
		svc := j.Orchd["service"]
		row := platform.ServiceStatus{Name: svc, Label: contract.Label(env.Namespace, svc), State: contract.StateStopped}
		out, err := p.ctl.Run(ctx, "print", p.domain()+"/"+j.Label)
		if err != nil {
			row.Message = "not loaded"
			rows = append(rows, row)
			continue
		}
		printed := parsePrint(out)
		if n, err := strconv.Atoi(printed["pid"]); err == nil {
			row.Pid = n
		}
		if n, err := strconv.Atoi(printed["last exit code"]); err == nil {
			row.ExitCode = &n
		}
		if n, err := strconv.Atoi(printed["runs"]); err == nil && n > 1 {
			row.Restarts = n - 1
		}
		switch printed["state"] {
		case "running":
			row.State, row.Healthy = contract.StateRunning, true
		case "not running":
			row.State = contract.StateExited
		default:
			row.State, row.Message = contract.StateStopped, printed["state"]
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// parsePrint reads the top-level "key = value" lines of `launchctl print`.
func parsePrint(out []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		// Top-level properties are indented by one tab; nested blocks more.
		if !strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "\t\t") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if ok {
			if _, seen := m[k]; !seen {
				m[k] = strings.TrimSpace(v)
			}
		}
	}
	return m
}

// Fell implements platform.Platform: bootout every job of the namespace
// (launchd sends SIGTERM, then SIGKILL after ExitTimeOut, and returns once
// the job is gone), then remove its plist and env file.
func (p *Platform) Fell(ctx context.Context, env contract.Env, opts platform.FellOptions) error {
	if err := p.check(); err != nil {
		return err
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if err := opts.Check(); err != nil {
		return err
	}
	jobs, where, err := p.jobs(env.Namespace)
	if err != nil {
		return fmt.Errorf("fell: %w", err)
	}
	l := contract.Layout{StateDir: env.StateDir}
	var errs []error
	for _, j := range jobs {
		svc := j.Orchd["service"]
		if len(opts.Services) > 0 && !slices.Contains(opts.Services, svc) {
			continue
		}
		target := p.domain() + "/" + j.Label
		if _, err := p.ctl.Run(ctx, "print", target); err == nil {
			if _, err := p.ctl.Run(ctx, "bootout", target); err != nil {
				errs = append(errs, fmt.Errorf("fell: %w", err))
				continue
			}
			fmt.Fprintf(logw, "stopped %s\n", svc)
		}
		for _, f := range []string{where[j.Label], envFile(l, contract.Label(env.Namespace, svc))} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("fell: %w", err))
			}
		}
	}
	// The data dir is kept; --volumes removes only this namespace's named
	// volumes, and only once every job is gone.
	if len(errs) == 0 {
		if err := opts.RemoveVolumes(env, logw); err != nil {
			errs = append(errs, fmt.Errorf("fell: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Logs implements platform.Platform: the job's StandardOutPath and
// StandardErrorPath. With opts.Follow it returns once the job is felled (its
// plist gone) or launchd no longer holds it.
func (p *Platform) Logs(ctx context.Context, env contract.Env, service string, w io.Writer, opts platform.LogOptions) error {
	def := contract.Layout{StateDir: env.StateDir}.LogFile(contract.Label(env.Namespace, service))
	paths := []string{def}
	label := JobLabel(env.Namespace, service)
	path := filepath.Join(p.jobDir, label+".plist")
	if b, err := os.ReadFile(path); err == nil {
		var j Job
		if _, err := plist.Unmarshal(b, &j); err == nil {
			paths = []string{cmp.Or(j.StandardOutPath, def), cmp.Or(j.StandardErrorPath, def)}
		}
	}
	var ended func() bool
	if opts.Follow {
		if err := p.check(); err != nil {
			return err
		}
		ended = func() bool {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return true
			}
			out, err := p.ctl.Run(ctx, "print", p.domain()+"/"+label)
			return err != nil || parsePrint(out)["state"] != "running"
		}
	}
	return platform.FollowFiles(ctx, paths, w, opts, ended)
}
