package systemd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/runtime/healthcheck"
)

// open checks that systemd can work here (one line saying why not and what
// to pass instead) and connects to the scope's manager.
// A platform chosen by flag, env or .orchrc gets connectTimeout, not
// the 2 s detection probe: on a loaded host the bus answers slowly.
func (p *Platform) open(ctx context.Context) (manager, error) {
	if err := p.host.managed(); err != nil {
		return nil, err
	}
	type dialed struct {
		m   manager
		err error
	}
	ch := make(chan dialed, 1)
	// The connection lives as long as ctx, so the dial is not bounded by a
	// derived context; a late dial is closed when it finally returns.
	go func() {
		m, err := p.connect(ctx, p.scope)
		ch <- dialed{m, err}
	}()
	t := time.NewTimer(connectTimeout)
	defer t.Stop()
	select {
	case d := <-ch:
		if d.err != nil {
			return nil, silent(p.scope, d.err)
		}
		return d.m, nil
	case <-t.C:
		go func() {
			if d := <-ch; d.m != nil {
				d.m.Close()
			}
		}()
		return nil, silent(p.scope, fmt.Errorf("no answer within %s", connectTimeout))
	}
}

// connectTimeout bounds connecting to the manager of a chosen platform.
const connectTimeout = 30 * time.Second

// Tend implements platform.Platform: it writes the units and env files,
// reloads the manager and starts (or, when its unit changed, restarts) each
// wanted service, waiting for systemd's verdict on every job. Start jobs of
// health-gated services end when the HEALTHCHECK passes.
func (p *Platform) Tend(ctx context.Context, beds contract.Beds, opts platform.TendOptions) (platform.TendResult, error) {
	var res platform.TendResult
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if beds.Platform != "systemd" {
		return res, fmt.Errorf("tend: beds are for platform %q, not systemd (plant them with --platform systemd)", beds.Platform)
	}
	if beds.Namespace == "" || strings.ContainsAny(beds.Namespace, "/.* ") || !filepath.IsAbs(beds.StateDir) {
		return res, fmt.Errorf("tend: beds carry namespace %q and state dir %q: want a DNS label and an absolute path", beds.Namespace, beds.StateDir)
	}
	if beds.Scope != "" && beds.Scope != p.scope {
		return res, fmt.Errorf("tend: beds were planted for the %s manager, this orchd talks to the %s one (pass --%s)", beds.Scope, p.scope, beds.Scope)
	}
	m, err := p.open(ctx)
	if err != nil {
		return res, err
	}
	defer m.Close()

	l := contract.Layout{StateDir: beds.StateDir}
	if err := l.Create(); err != nil {
		return res, fmt.Errorf("tend: %w", err)
	}
	changed, _, err := platform.WriteArtifacts(beds, KindUnit)
	if err != nil {
		return res, err
	}
	if err := m.Reload(ctx); err != nil {
		return res, fmt.Errorf("tend: daemon-reload: %w", err)
	}
	if opts.NoStart {
		return res, nil
	}

	type job struct {
		service, unit string
		restart       bool
	}
	var jobs []job
	for _, b := range beds.Beds {
		named := slices.Contains(opts.Only, b.Service)
		switch {
		case len(opts.Only) > 0 && !named:
			// systemd pulls in what a named service REQUIRES itself.
		case platform.SkipReason(b, named) != "":
			why := platform.SkipReason(b, named)
			res.Skipped = append(res.Skipped, platform.Skip{Service: b.Service, Reason: why})
			fmt.Fprintf(logw, "skipped %s: %s\n", b.Service, why)
		default:
			unit := UnitName(beds.Namespace, b.Service)
			st, err := m.State(ctx, unit)
			if err != nil {
				return res, fmt.Errorf("tend %s: %w", b.Service, err)
			}
			up := st.ActiveState == "active" || st.ActiveState == "activating" || st.ActiveState == "reloading"
			if up && st.SubState == "exited" && !isOneshot(b) {
				// A service that ended on its own is started again, as on
				// orchdi; only a completed ONESHOT stays completed.
				changed[b.Service] = true
			}
			switch {
			case up && !changed[b.Service]:
				res.Unchanged = append(res.Unchanged, b.Service)
				fmt.Fprintf(logw, "unchanged %s\n", b.Service)
			case up:
				jobs = append(jobs, job{b.Service, unit, true})
			default:
				if st.ActiveState == "failed" {
					// A failed unit (start limit hit) starts again only
					// once its failure is forgotten.
					if err := m.ResetFailed(ctx, unit); err != nil {
						return res, fmt.Errorf("tend %s: reset-failed: %w", b.Service, err)
					}
				}
				jobs = append(jobs, job{service: b.Service, unit: unit})
			}
		}
	}
	// Every job is enqueued at once and systemd orders them (Requires=,
	// After=); results are collected in bed order.
	errc := make([]chan error, len(jobs))
	for i, j := range jobs {
		errc[i] = make(chan error, 1)
		go func() {
			if j.restart {
				errc[i] <- m.Restart(ctx, j.unit)
			} else {
				errc[i] <- m.Start(ctx, j.unit)
			}
		}()
	}
	var errs []error
	for i, j := range jobs {
		if err := <-errc[i]; err != nil {
			errs = append(errs, fmt.Errorf("tend %s: %w (see `orchd logs %s`)", j.service, err, j.service))
			continue
		}
		if j.restart {
			res.Restarted = append(res.Restarted, j.service)
			fmt.Fprintf(logw, "restarted %s\n", j.service)
		} else {
			res.Started = append(res.Started, j.service)
			fmt.Fprintf(logw, "started %s\n", j.service)
		}
	}
	return res, errors.Join(errs...)
}

// installed is one of this namespace's units found in the unit directory.
type installed struct {
	service, unit, path string
	// gated: a HEALTHCHECK gates the unit's readiness.
	gated bool
}

// units lists the namespace's unit files: named orch-<ns>-*.service and
// marked with the namespace in [Unit].
func (p *Platform) units(ns string) ([]installed, error) {
	matches, err := filepath.Glob(filepath.Join(p.unitDir, "orch-"+ns+"-*.service"))
	if err != nil {
		return nil, err
	}
	var out []installed
	for _, path := range matches {
		svc, gated, err := unitMarker(path, ns)
		if err != nil {
			continue
		}
		out = append(out, installed{service: svc, unit: filepath.Base(path), path: path, gated: gated})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].service < out[j].service })
	return out, nil
}

// unitMarker returns the service of an orchd unit file of namespace ns and
// whether a HEALTHCHECK gates it.
func unitMarker(path, ns string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", false, err
	}
	gotNS, svc, gated := "", "", false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case keyNamespace:
			gotNS = v
		case keyService:
			svc = v
		case keyHealth:
			gated = v == "gated"
		}
	}
	if gotNS != ns || svc == "" || filepath.Base(path) != UnitName(ns, svc) {
		return "", false, errNotOurs
	}
	return svc, gated, nil
}

// Survey implements platform.Platform from the manager's view of each unit.
func (p *Platform) Survey(ctx context.Context, env contract.Env) ([]platform.ServiceStatus, error) {
	m, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	us, err := p.units(env.Namespace)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var rows []platform.ServiceStatus
	for _, u := range us {
		st, err := m.State(ctx, u.unit)
		if err != nil {
			return nil, fmt.Errorf("survey %s: %w", u.service, err)
		}
		row := statusRow(env.Namespace, u.service, st, now)
		if u.gated {
			row.Health = health(st)
			row.Healthy = row.Health == healthcheck.Healthy
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// statusRow maps a unit's state onto orchd's survey states.
func statusRow(ns, service string, st unitState, now time.Time) platform.ServiceStatus {
	row := platform.ServiceStatus{Name: service, Label: contract.Label(ns, service), Pid: st.MainPID,
		Restarts: st.NRestarts, Since: st.StateChange}
	exit := func() {
		if st.ExecMainCode != 0 {
			code := st.ExecMainStatus
			if st.ExecMainCode != 1 { // killed or dumped: the shell's 128+signal
				code = 128 + st.ExecMainStatus
			}
			row.ExitCode = &code
		}
	}
	switch st.ActiveState {
	case "active", "reloading":
		if st.SubState == "exited" {
			row.State = contract.StateExited
			exit()
		} else {
			row.State = contract.StateRunning
			if !st.ActiveEnter.IsZero() {
				row.Uptime = now.Sub(st.ActiveEnter)
			}
		}
		row.Healthy = true
	case "activating":
		row.State = contract.StateStarting
		if st.SubState == "auto-restart" {
			row.State = contract.StateRestarting
			exit()
		}
	case "failed":
		row.State = contract.StateFailed
		row.Message = st.Result
		if st.Restart != "" && st.Restart != "no" && st.NRestarts > 0 {
			// Failed although its policy restarts it: systemd refused the
			// restart (start limit). NRestarts counts that refused restart
			// too; survey reports the restarts that ran, as orchdi does.
			row.Restarts = st.NRestarts - 1
			row.Message = "start limit hit (" + st.Result + ")"
		}
		exit()
	case "deactivating":
		row.State, row.Message = contract.StateStopped, "stopping"
	default:
		// Inactive: exited on its own when its main process ran and
		// ended (orchdi's "exited"), else never started or stopped.
		row.State = contract.StateStopped
		if st.ExecMainCode != 0 {
			row.State = contract.StateExited
		}
		if st.LoadState != "loaded" {
			row.Message = "unit " + st.LoadState
		}
		exit()
	}
	if row.State != contract.StateRunning && row.State != contract.StateStarting {
		row.Pid = 0
	}
	return row
}

// health is the HEALTHCHECK verdict of a gated unit: "starting" while its
// start job waits for the first pass; once active, the latest verdict
// notify-relay reported (STATUS=health: ...), else "healthy": a host
// service's health-wait let the start job end only when the check passed
// (systemd runs no check after that). Nothing when it does not run.
func health(st unitState) string {
	switch st.ActiveState {
	case "activating":
		if st.SubState != "auto-restart" {
			return "starting"
		}
	case "active", "reloading":
		if st.SubState == "exited" {
			return ""
		}
		if v, ok := strings.CutPrefix(st.StatusText, statusPrefix); ok {
			return v
		}
		return healthcheck.Healthy
	}
	return ""
}

// Fell implements platform.Platform: stop every unit of the namespace
// (systemd kills the unit's whole cgroup after TimeoutStopSec), remove the
// unit and env files, daemon-reload, reset-failed; then check that the
// manager holds none of them any more.
func (p *Platform) Fell(ctx context.Context, env contract.Env, opts platform.FellOptions) error {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if err := opts.Check(); err != nil {
		return err
	}
	m, err := p.open(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	us, err := p.units(env.Namespace)
	if err != nil {
		return fmt.Errorf("fell: %w", err)
	}
	names := map[string]string{} // unit -> its file (may be gone)
	for _, u := range us {
		names[u.unit] = u.path
	}
	// Units still loaded whose file a half-done fell already removed.
	loaded, err := m.Loaded(ctx, []string{"orch-" + env.Namespace + "-*.service"})
	if err != nil {
		return fmt.Errorf("fell: %w", err)
	}
	for _, n := range loaded {
		if _, ok := names[n]; ok {
			continue
		}
		if st, err := m.State(ctx, n); err == nil && filepath.Dir(st.FragmentPath) == p.unitDir {
			if _, err := os.Stat(st.FragmentPath); errors.Is(err, os.ErrNotExist) {
				names[n] = st.FragmentPath
			}
		}
	}
	if len(opts.Services) > 0 {
		// fell SERVICE...: only those units.
		for unit := range names {
			svc := strings.TrimSuffix(strings.TrimPrefix(unit, "orch-"+env.Namespace+"-"), ".service")
			if !slices.Contains(opts.Services, svc) {
				delete(names, unit)
			}
		}
	}
	var errs []error
	errc := map[string]chan error{}
	for unit := range names {
		ch := make(chan error, 1)
		errc[unit] = ch
		go func() { ch <- m.Stop(ctx, unit) }()
	}
	l := contract.Layout{StateDir: env.StateDir}
	for unit, path := range names {
		if err := <-errc[unit]; err != nil {
			errs = append(errs, fmt.Errorf("fell: %w", err))
			continue
		}
		fmt.Fprintf(logw, "stopped %s\n", unit)
		svc := strings.TrimSuffix(strings.TrimPrefix(unit, "orch-"+env.Namespace+"-"), ".service")
		for _, f := range []string{path, envFile(l, contract.Label(env.Namespace, svc))} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("fell: %w", err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := m.Reload(ctx); err != nil {
		return fmt.Errorf("fell: daemon-reload: %w", err)
	}
	for unit := range names {
		// Forget failed state (and the start-limit counter) so the unit
		// is garbage-collected; a unit that never failed answers "not loaded".
		m.ResetFailed(ctx, unit)
	}
	left, err := m.Loaded(ctx, []string{"orch-" + env.Namespace + "-*.service"})
	if err != nil {
		return fmt.Errorf("fell: %w", err)
	}
	for _, n := range left {
		if _, ours := names[n]; ours {
			if st, err := m.State(ctx, n); err == nil && st.ActiveState != "inactive" {
				errs = append(errs, fmt.Errorf("fell: %s is still %s/%s after stop", n, st.ActiveState, st.SubState))
			}
		}
	}
	// The data dir is kept: data outlives the units. --volumes removes only
	// this namespace's named volumes.
	if err := opts.RemoveVolumes(env, logw); err != nil {
		errs = append(errs, fmt.Errorf("fell: %w", err))
	}
	return errors.Join(errs...)
}

// Reload asks the manager to reload one service (ExecReload=, from RELOAD).
func (p *Platform) Reload(ctx context.Context, env contract.Env, service string) error {
	m, err := p.open(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.ReloadUnit(ctx, UnitName(env.Namespace, service))
}

// Logs implements platform.Platform: the files the unit appends its stdout
// and stderr to (the service log under the state dir unless STDOUT/STDERR
// name others). With opts.Follow it returns once the unit has ended (no
// longer active or activating, or felled: its unit file gone).
func (p *Platform) Logs(ctx context.Context, env contract.Env, service string, w io.Writer, opts platform.LogOptions) error {
	l := contract.Layout{StateDir: env.StateDir}
	path := filepath.Join(p.unitDir, UnitName(env.Namespace, service))
	paths := []string{l.LogFile(contract.Label(env.Namespace, service))}
	if b, err := os.ReadFile(path); err == nil {
		paths = logPaths(string(b), paths[0])
	}
	if !opts.Follow {
		return platform.FollowFiles(ctx, paths, w, opts, nil)
	}
	m, err := p.open(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	ended := func() bool {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return true
		}
		st, err := m.State(ctx, UnitName(env.Namespace, service))
		return err != nil || unitEnded(st)
	}
	return platform.FollowFiles(ctx, paths, w, opts, ended)
}

// logPaths reads a unit's StandardOutput=/StandardError= append: files;
// def stands in for either when the unit names none.
func logPaths(unit, def string) []string {
	out := []string{def, def}
	for _, line := range strings.Split(unit, "\n") {
		for i, key := range []string{"StandardOutput=append:", "StandardError=append:"} {
			if v, ok := strings.CutPrefix(line, key); ok {
				out[i] = strings.ReplaceAll(v, "%%", "%")
			}
		}
	}
	return out
}

// unitEnded: the unit will write no more without another start: inactive,
// failed, or active only as a record of a main process that has exited
// (RemainAfterExit). A unit in auto-restart is still going.
func unitEnded(st unitState) bool {
	switch st.ActiveState {
	case "inactive", "failed":
		return true
	case "active":
		return st.SubState == "exited"
	}
	return false
}

// isOneshot reads the bed's unit: Type=oneshot.
func isOneshot(b contract.Bed) bool {
	for _, a := range b.Artifacts {
		if a.Kind == KindUnit {
			return strings.Contains(a.Content, "\nType=oneshot\n")
		}
	}
	return false
}
