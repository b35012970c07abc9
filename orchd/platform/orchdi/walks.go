package orchdi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/procfs"
	"github.com/orchd/orchd/orchd/spec"
	"github.com/orchd/orchd/orchd/supervise"
)

// Survey implements platform.Platform: one row per status file of the
// namespace. A supervisor that died in a non-final state is reported failed.
func (*Platform) Survey(ctx context.Context, env contract.Env) ([]platform.ServiceStatus, error) {
	l := contract.Layout{StateDir: env.StateDir}
	entries, err := os.ReadDir(l.StatusDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("survey: %w", err)
	}
	prefix := env.Namespace + "."
	var rows []platform.ServiceStatus
	now := time.Now()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, ".json") {
			continue
		}
		label := strings.TrimSuffix(name, ".json")
		st, alive, err := supervise.ReadSettled(l, label)
		if err != nil {
			continue // removed by fell right now
		}
		svc := st.Service
		if svc == "" {
			svc = strings.TrimPrefix(label, prefix)
		}
		if !supervise.Final(st.State) && !alive {
			st.State, st.Message, st.Healthy, st.Health = contract.StateFailed, "supervisor died", false, ""
		}
		row := platform.ServiceStatus{Name: svc, Label: label, State: st.State, Pid: st.Pid, Restarts: st.Restarts,
			ExitCode: st.ExitCode, Healthy: st.Healthy, Health: st.Health, LeafPid: st.LeafPid, Since: st.Since, Message: st.Message}
		if st.State == contract.StateRunning && !st.Since.IsZero() {
			row.Uptime = now.Sub(st.Since)
		}
		// Only a live process is shown: a stopped service's last pid may
		// already belong to another process.
		if row.Pid > 0 && (supervise.Final(row.State) || !supervise.Running(row.Pid)) {
			row.Pid = 0
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows, nil
}

// fellMargin is added to the longest TIMEOUT_STOP: post_stop and exits.
const fellMargin = 5 * time.Second

// Fell implements platform.Platform. It SIGTERMs every supervisor of the
// namespace (or of opts.Services), waits for them (bounded by the longest
// TIMEOUT_STOP + margin), SIGKILLs stragglers, then waits for or kills any
// init still running (an init is what holds a service's PID namespace), and
// verifies that no process naming those units remains. It then removes their
// run/ and status/ files. Logs are kept so that `orchd logs` can still explain
// what happened; the next grow appends. Data is kept: only opts.Volumes removes
// the namespace's named volumes (<data>/volumes/<namespace>), never anything
// else under the data dir.
func (*Platform) Fell(ctx context.Context, env contract.Env, opts platform.FellOptions) error {
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if env.StateDir == "" || env.Namespace == "" {
		return fmt.Errorf("fell: no state dir or namespace")
	}
	if err := opts.Check(); err != nil {
		return err
	}
	l := contract.Layout{StateDir: env.StateDir}
	// A marker is a unit path prefix: "<run>/<ns>." for the namespace,
	// "<run>/<ns>.<service>." for one service (names hold no dots).
	prefixes := []string{env.Namespace}
	if len(opts.Services) > 0 {
		prefixes = nil
		for _, svc := range opts.Services {
			prefixes = append(prefixes, contract.Label(env.Namespace, svc))
		}
	}
	var markers []string
	for _, p := range prefixes {
		markers = append(markers, filepath.Join(l.RunDir(), p+"."))
	}
	scanAll := func() map[int]bool {
		out := map[int]bool{}
		for _, m := range markers {
			maps.Copy(out, scan(m))
		}
		return out
	}
	grace := spec.Timeouts{}.StopTimeout()
	for _, m := range markers {
		units, _ := filepath.Glob(m + "*unit.json")
		for _, u := range units {
			if g := unitGrace(u); g > grace {
				grace = g
			}
		}
	}
	grace += fellMargin

	// Supervisors: from pidfiles, plus any the scan finds (a lost pidfile).
	sups := map[int]bool{}
	for _, m := range markers {
		for _, pf := range globPids(m) {
			label := strings.TrimSuffix(strings.TrimPrefix(pf, l.RunDir()+"/"), ".pid")
			if pid := supervise.ReadPid(pf); supervise.Alive(pid, l.UnitFile(label)) {
				sups[pid] = true
			}
		}
	}
	for pid, isInit := range scanAll() {
		if !isInit {
			sups[pid] = true
		}
	}
	var pids []int
	for pid := range sups {
		pids = append(pids, pid)
		syscall.Kill(pid, syscall.SIGTERM)
	}
	if len(pids) > 0 {
		fmt.Fprintf(logw, "stopping %d supervisors\n", len(pids))
	}
	if !waitGone(ctx, pids, grace) {
		for _, pid := range pids {
			if supervise.Running(pid) {
				fmt.Fprintf(logw, "supervisor %d still running after %s: SIGKILL\n", pid, grace)
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		waitGone(ctx, pids, 5*time.Second)
	}
	// Inits whose supervisor was killed stop their service on their own
	// (PDEATHSIG), within TIMEOUT_STOP; wait for that, then kill.
	var inits []int
	for pid := range scanAll() {
		inits = append(inits, pid)
	}
	if !waitGone(ctx, inits, grace) {
		for _, pid := range inits {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		waitGone(ctx, inits, 5*time.Second)
	}
	var problems []string
	for pid := range scanAll() {
		problems = append(problems, fmt.Sprintf("process %d (%s) is still running", pid, strings.Join(supervise.Cmdline(pid), " ")))
	}
	for _, p := range prefixes {
		// Cgroups of host services with limits, left by a killed supervisor.
		pat := p + ".*"
		if len(opts.Services) > 0 {
			pat = p
		}
		cgName := supervise.CgroupName(pat, env.StateDir)
		for _, g := range []string{"/sys/fs/cgroup/orchd/" + cgName, "/sys/fs/cgroup/*/orchd/" + cgName} {
			dirs, _ := filepath.Glob(g)
			for _, d := range dirs {
				if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
					problems = append(problems, fmt.Sprintf("remove cgroup %s: %v", d, err))
				}
			}
		}
	}
	// The shared parents go too once empty (another namespace may still use them).
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/orchd")
	for _, d := range append(parents, "/sys/fs/cgroup/orchd") {
		os.Remove(d)
	}
	for _, dir := range []string{l.RunDir(), l.StatusDir()} {
		for _, p := range prefixes {
			files, _ := filepath.Glob(filepath.Join(dir, p+".*"))
			hidden, _ := filepath.Glob(filepath.Join(dir, "."+p+".*"))
			for _, f := range append(files, hidden...) {
				if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
					problems = append(problems, fmt.Sprintf("remove %s: %v", f, err))
				}
			}
		}
	}
	if err := opts.RemoveVolumes(env, logw); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("fell %s: %s", env.Namespace, strings.Join(problems, "; "))
	}
	return nil
}

func globPids(marker string) []string {
	m, _ := filepath.Glob(marker + "*.pid")
	return m
}

func unitGrace(path string) time.Duration {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var u contract.Unit
	if json.Unmarshal(b, &u) != nil {
		return 0
	}
	return supervise.StopBound(u)
}

// scan finds live processes whose argv names a file under marker (the
// namespace's run dir prefix): supervisors, their inits and the containerd
// leaves they exec directly. The value says whether it is not a supervisor.
func scan(marker string) map[int]bool {
	out := map[int]bool{}
	for pid, p := range scanUnits(marker) {
		out[pid] = p.init
	}
	return out
}

// scanned is one process scanUnits found.
type scanned struct {
	init bool   // an init or a leaf, not a supervisor
	unit string // the unit path in its argv (a leaf's: beside its spec file)
}

// scanUnits is scan with the unit path each process names. The filter on
// the raw cmdline keeps /proc reads to one per process for all others.
func scanUnits(marker string) map[int]scanned {
	out := map[int]scanned{}
	procs, err := procfs.Scan(func(cmdline []byte) bool { return bytes.Contains(cmdline, []byte(marker)) })
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, proc := range procs {
		if proc.Pid == self || !proc.Live() || len(proc.Argv) < 2 {
			continue
		}
		var p scanned
		switch proc.Argv[1] {
		case "supervise":
			for _, a := range proc.Argv {
				if strings.HasPrefix(a, marker) {
					p.unit = a
				}
				if a == "--init" {
					p.init = true
				}
			}
		case "containerd-run":
			// A leaf runs without an init (contract.Exec.Leaf) and names
			// its spec file, which lies beside its unit.
			p.init = true
			for _, a := range proc.Argv {
				if u, ok := contract.CrunUnit(a); ok && strings.HasPrefix(a, marker) {
					p.unit = u
				}
			}
		}
		if p.unit != "" {
			out[proc.Pid] = p
		}
	}
	return out
}

// Logs implements platform.Platform: the service's STDOUT and, when it goes
// elsewhere, STDERR (by default both are orchd's service log, whose records
// carry each line's time and stream), per opts, then with opts.Follow what is
// appended until the service has ended (a final state, or felled) or ctx
// ends. A felled service's unit is gone; its log is still read (its own
// STDOUT/STDERR paths were recorded beside the log by its supervisor).
func (*Platform) Logs(ctx context.Context, env contract.Env, service string, w io.Writer, opts platform.LogOptions) error {
	l := contract.Layout{StateDir: env.StateDir}
	label := contract.Label(env.Namespace, service)
	srcs := logSources(l, label)
	if opts.NeedsTimes() {
		for _, s := range srcs {
			if !s.Records {
				return fmt.Errorf("logs %s: -t and --since need per-line times, and %s's output goes to %s, which orchd keeps exactly as the service wrote it (no times): drop -t/--since for %s, or remove STDOUT/STDERR from its SERVICE block so orchd keeps its log", service, service, s.Path, service)
			}
		}
	}
	found := fileExists(l.StatusFile(label))
	for _, s := range srcs {
		found = found || fileExists(s.Path)
	}
	if !found {
		return fmt.Errorf("logs %s: no status and no log in %s", service, l.LogDir())
	}
	ended := func() bool { return serviceEnded(l, label) }
	if err := platform.ReadLogs(ctx, srcs, w, opts, ended); err != nil {
		return fmt.Errorf("logs %s: %w", service, err)
	}
	return nil
}

// logSources are the files a service's output is in: its unit's STDOUT and
// STDERR, or after fell what its supervisor recorded, or orchd's log.
func logSources(l contract.Layout, label string) []platform.LogSource {
	def := l.LogFile(label)
	var paths []string
	if b, err := contract.ReadPrivate(l.UnitFile(label)); err == nil {
		var u contract.Unit
		if json.Unmarshal(b, &u) == nil {
			paths = []string{u.Stdout, u.Stderr}
		}
	} else if lp, err := supervise.ReadLogPaths(l, label); err == nil {
		paths = []string{lp.Stdout, lp.Stderr}
	}
	srcs := []platform.LogSource{}
	for _, p := range paths {
		if p == "" {
			p = def
		}
		if !slices.ContainsFunc(srcs, func(s platform.LogSource) bool { return s.Path == p }) {
			srcs = append(srcs, platform.LogSource{Path: p, Records: p == def})
		}
	}
	if len(srcs) == 0 {
		srcs = append(srcs, platform.LogSource{Path: def, Records: true})
	}
	return srcs
}

// serviceEnded reports whether a followed service will write no more: felled
// (no status), or in a final state, or its supervisor gone.
func serviceEnded(l contract.Layout, label string) bool {
	st, alive, err := supervise.ReadSettled(l, label)
	return err != nil || supervise.Final(st.State) || !alive
}

// tail writes the last n lines of a file.
func tail(path string, n int, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	off, err := platform.TailOffset(f, n, nil)
	if err != nil {
		return err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	return err
}
