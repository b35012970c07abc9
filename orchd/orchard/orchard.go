// Package orchard composes orchd's rows (sow, plant, tend) and the walks built
// on them (grow, survey, fell, logs). Each row is a pure function of its input
// except tend, the only one with side effects.
package orchard

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/platform/launchd"
	"github.com/orchd/orchd/orchd/platform/orchdi"
	"github.com/orchd/orchd/orchd/platform/systemd"
	"github.com/orchd/orchd/orchd/runtime"
	"github.com/orchd/orchd/orchd/runtime/bare"
	"github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/runtime/vm"
	"github.com/orchd/orchd/orchd/spec"
	"github.com/orchd/orchd/orchd/supervise"
)

// Runtime returns the runtime called name.
func Runtime(name string) (runtime.Runtime, error) {
	switch name {
	case "bare":
		return bare.New(), nil
	case "containerd":
		return containerd.New(), nil
	case "vm":
		return vm.New(), nil
	}
	return nil, fmt.Errorf("unknown runtime %q: want bare, containerd or vm", name)
}

// RuntimeFor returns the configured runtime, with the configured containerd
// socket when one is set (flag, .orchrc or environment).
func RuntimeFor(c *config.Config) (runtime.Runtime, error) {
	rt, err := Runtime(c.Runtime)
	if err != nil {
		return nil, err
	}
	if r, ok := rt.(*containerd.Runtime); ok && c.Address != "" {
		r.Socket = c.Address
	}
	return rt, nil
}

// Platform returns the platform called name, for scope ("user" or "system";
// empty = user). A platform that cannot work on this host says so, in one
// line naming what to pass instead, when it is first asked to act.
func Platform(name, scope string) (platform.Platform, error) {
	switch name {
	case "orchdi":
		return orchdi.New(), nil
	case "systemd":
		return systemd.New(scope), nil
	case "launchd":
		return launchd.New(scope), nil
	}
	return nil, fmt.Errorf("unknown platform %q: want orchdi, systemd or launchd", name)
}

// EnvFor derives the rows' environment from a configuration.
func EnvFor(c *config.Config) (contract.Env, error) {
	self, err := os.Executable()
	if err != nil {
		return contract.Env{}, fmt.Errorf("locate orchd binary: %w", err)
	}
	return contract.Env{ProjectDir: c.ProjectDir, StateDir: c.StateDir, DataDir: c.DataDir, Namespace: c.Namespace, Orchd: self}, nil
}

// Builtins are the values orchd fills for the Orchfile's built-in variables.
func Builtins(env contract.Env) map[string]string {
	return map[string]string{
		"ORCH_PROJECT":        env.ProjectDir,
		"ORCH_DATA":           env.DataDir,
		"ORCH_STATE_DIR":      env.StateDir,
		"ORCH_CONTAINERS_DIR": env.ProjectDir,
	}
}

// Sow turns a Spec into Cuttings for one runtime. Pure.
func Sow(s *spec.Spec, rt runtime.Runtime, env contract.Env) (*contract.Cuttings, error) {
	out := &contract.Cuttings{Version: contract.Version, Runtime: rt.Name(), Env: env, Cuttings: []contract.Cutting{}}
	vars := Builtins(env)
	for _, svc := range s.Services {
		spec.ExpandBuiltins(&svc, vars)
		c, err := rt.Cut(svc, env)
		if err != nil {
			return nil, fmt.Errorf("sow %s: %w", svc.Name, err)
		}
		out.Cuttings = append(out.Cuttings, c)
	}
	return out, nil
}

// Plant turns Cuttings into Beds for one platform. Pure.
func Plant(c *contract.Cuttings, p platform.Platform, scope string) (*contract.Beds, error) {
	if c.Version != contract.Version {
		return nil, fmt.Errorf("cuttings version %q: this orchd reads version %q", c.Version, contract.Version)
	}
	b, err := p.Plant(*c, scope)
	if err != nil {
		return nil, fmt.Errorf("plant: %w", err)
	}
	return &b, nil
}

// GrowOptions control grow.
type GrowOptions struct {
	// Only names the services to start (with what they REQUIRE); empty = all.
	Only    []string
	NoStart bool
	// Wait returns only when every started service is ready (running and
	// healthy, or a oneshot that exited 0), failing on the first that cannot be.
	Wait bool
	// RemoveOrphans stops services running in the namespace that the
	// Orchfile no longer has.
	RemoveOrphans bool
	Log           io.Writer // progress lines; nil = discard
}

// GrowResult is what grow did, and the orphans it found.
type GrowResult struct {
	platform.TendResult
	// Orphans run in the namespace but are not in the Orchfile.
	Orphans []string `json:"orphans,omitempty"`
}

// Grow parses, sows, plants and tends: the whole pipeline in process.
func Grow(ctx context.Context, c *config.Config, opts GrowOptions) (GrowResult, error) {
	var res GrowResult
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	s, err := spec.ParseFiles(c.Files(), spec.Options{Args: c.Args})
	if err != nil {
		return res, err
	}
	if err := checkNames(s, opts.Only); err != nil {
		return res, err
	}
	for _, w := range Warnings(c, c.Files(), s) {
		fmt.Fprintln(logw, "warning:", w)
	}
	env, err := EnvFor(c)
	if err != nil {
		return res, err
	}
	rt, err := RuntimeFor(c)
	if err != nil {
		return res, err
	}
	p, err := Platform(c.Platform, c.Scope)
	if err != nil {
		return res, err
	}
	if ch, ok := rt.(runtime.Checker); ok && !opts.NoStart {
		if err := ch.Check(ctx, env); err != nil {
			return res, err
		}
	}
	cut, err := Sow(s, rt, env)
	if err != nil {
		return res, err
	}
	beds, err := Plant(cut, p, c.Scope)
	if err != nil {
		return res, err
	}
	started := time.Now()
	res.TendResult, err = p.Tend(ctx, *beds, platform.TendOptions{NoStart: opts.NoStart, Only: opts.Only, Log: logw})
	if err != nil {
		return res, err
	}
	if res.Orphans, err = orphans(ctx, p, env, s); err != nil {
		return res, err
	}
	if len(res.Orphans) > 0 {
		if opts.RemoveOrphans {
			fmt.Fprintf(logw, "removing orphans (not in the Orchfile): %s\n", strings.Join(res.Orphans, ", "))
			if err := Fell(ctx, c, platform.FellOptions{Services: res.Orphans, Log: logw}); err != nil {
				return res, err
			}
		} else {
			fmt.Fprintf(logw, "orphans (running, not in the Orchfile; grow --remove-orphans stops them): %s\n", strings.Join(res.Orphans, ", "))
		}
	}
	if opts.Wait && !opts.NoStart {
		wait := append(append(append([]string{}, res.Started...), res.Restarted...), res.Unchanged...)
		return res, waitReady(ctx, p, env, s, wait, started, logw)
	}
	return res, nil
}

// orphans are the services with a live supervisor in the namespace that the
// Orchfile does not have.
func orphans(ctx context.Context, p platform.Platform, env contract.Env, s *spec.Spec) ([]string, error) {
	rows, err := p.Survey(ctx, env)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		if _, ok := s.Service(r.Name); !ok && !supervise.Final(r.State) {
			out = append(out, r.Name)
		}
	}
	return out, nil
}

// waitReady polls survey until each service is ready, failing as soon as one
// failed or exited without becoming ready, or when its READINESS_TIMEOUT
// (counted from the start of grow) has passed.
func waitReady(ctx context.Context, p platform.Platform, env contract.Env, s *spec.Spec, services []string, from time.Time, logw io.Writer) error {
	l := contract.Layout{StateDir: env.StateDir}
	pending := slices.Clone(services)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(pending) > 0 {
		rows, err := p.Survey(ctx, env)
		if err != nil {
			return err
		}
		byName := map[string]platform.ServiceStatus{}
		for _, r := range rows {
			byName[r.Name] = r
		}
		var still []string
		for _, name := range pending {
			if _, err := os.Stat(l.ReadyFile(contract.Label(env.Namespace, name))); err == nil {
				fmt.Fprintf(logw, "ready %s\n", name)
				continue
			}
			r := byName[name]
			if r.State == contract.StateFailed || r.State == contract.StateStopped || (r.State == contract.StateExited && r.ExitCode != nil) {
				return fmt.Errorf("grow --wait: %s is not ready: %s%s (orchd logs %s)", name, r.State, reasonSuffix(r), name)
			}
			timeout := spec.Readiness("")
			if svc, ok := s.Service(name); ok {
				timeout = spec.Readiness(svc.ReadinessTimeout)
			}
			if time.Since(from) > timeout {
				return fmt.Errorf("grow --wait: %s is not ready after its READINESS_TIMEOUT %s: %s%s (orchd logs %s)", name, timeout, dashIfEmpty(r.State), reasonSuffix(r), name)
			}
			still = append(still, name)
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("grow --wait: %s not ready: %w", strings.Join(pending, ", "), ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

func reasonSuffix(r platform.ServiceStatus) string {
	var parts []string
	if r.ExitCode != nil {
		parts = append(parts, fmt.Sprintf("exit code %d", *r.ExitCode))
	}
	if r.Message != "" {
		parts = append(parts, r.Message)
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "not started"
	}
	return s
}

// Survey reports every service with state, enriched by the runtime when it can.
func Survey(ctx context.Context, c *config.Config, only ...string) ([]platform.ServiceStatus, error) {
	env, p, rt, err := setup(c)
	if err != nil {
		return nil, err
	}
	rows, err := p.Survey(ctx, env)
	if err != nil {
		return nil, err
	}
	if rows, err = pick(rows, only); err != nil {
		return nil, err
	}
	if d, ok := rt.(runtime.Describer); ok && len(rows) > 0 {
		names := make([]string, len(rows))
		for i, r := range rows {
			names[i] = r.Name
		}
		details, err := d.Describe(ctx, env, names)
		if err != nil {
			// Survey still reports what the supervisors know.
			for i := range rows {
				rows[i].TaskStatus = "unknown: " + err.Error()
			}
		}
		for i, r := range rows {
			if det, ok := details[r.Name]; ok {
				rows[i].ContainerID, rows[i].TaskStatus = det.ContainerID, det.TaskStatus
			}
		}
	}
	return rows, nil
}

// Fell stops every service of the namespace (or opts.Services), then lets the
// runtime sweep what a killed leaf may have left behind.
func Fell(ctx context.Context, c *config.Config, opts platform.FellOptions) error {
	env, p, rt, err := setup(c)
	if err != nil {
		return err
	}
	if len(opts.Services) > 0 {
		rows, err := p.Survey(ctx, env)
		if err != nil {
			return err
		}
		var known []string
		for _, r := range rows {
			known = append(known, r.Name)
		}
		for _, n := range opts.Services {
			if !slices.Contains(known, n) {
				return unknownService(n, known)
			}
		}
	}
	fellErr := p.Fell(ctx, env, opts)
	// The sweep covers opts.Services, or every service of the namespace.
	if sw, ok := rt.(runtime.Sweeper); ok {
		if err := sw.Sweep(ctx, env, opts.Services); err != nil {
			return joinErr(fellErr, fmt.Errorf("sweep %s runtime: %w", rt.Name(), err))
		}
	}
	return fellErr
}

// pick keeps the rows of the named services (all when none are named); a
// name with no row is an error listing the known ones.
func pick(rows []platform.ServiceStatus, only []string) ([]platform.ServiceStatus, error) {
	if len(only) == 0 {
		return rows, nil
	}
	var known []string
	for _, r := range rows {
		known = append(known, r.Name)
	}
	var out []platform.ServiceStatus
	for _, n := range only {
		i := slices.Index(known, n)
		if i < 0 {
			return nil, unknownService(n, known)
		}
		out = append(out, rows[i])
	}
	return out, nil
}

// ServiceNames lists the Orchfile's services and those with state in the
// namespace, sorted and without duplicates (shell completion).
func ServiceNames(ctx context.Context, c *config.Config) []string {
	var out []string
	if s, err := spec.ParseFiles(c.Files(), spec.Options{Args: c.Args}); err == nil {
		for _, svc := range s.Services {
			out = append(out, svc.Name)
		}
	}
	if env, p, _, err := setup(c); err == nil {
		if rows, err := p.Survey(ctx, env); err == nil {
			for _, r := range rows {
				out = append(out, r.Name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func setup(c *config.Config) (contract.Env, platform.Platform, runtime.Runtime, error) {
	env, err := EnvFor(c)
	if err != nil {
		return env, nil, nil, err
	}
	p, err := Platform(c.Platform, c.Scope)
	if err != nil {
		return env, nil, nil, err
	}
	rt, err := RuntimeFor(c)
	return env, p, rt, err
}

func checkNames(s *spec.Spec, only []string) error {
	var known []string
	for _, svc := range s.Services {
		known = append(known, svc.Name)
	}
	for _, n := range only {
		if _, ok := s.Service(n); !ok {
			return unknownService(n, known)
		}
	}
	return nil
}

func unknownService(name string, known []string) error {
	sort.Strings(known)
	if len(known) == 0 {
		return fmt.Errorf("unknown service %q: no services are known here", name)
	}
	return fmt.Errorf("unknown service %q: known services are %s", name, strings.Join(known, ", "))
}

func joinErr(a, b error) error {
	if a == nil {
		return b
	}
	return fmt.Errorf("%w; %w", a, b)
}
