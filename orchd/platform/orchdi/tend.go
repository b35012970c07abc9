package orchdi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/durable"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/procfs"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
	"github.com/orchd/orchd/orchd/spec"
	"github.com/orchd/orchd/orchd/supervise"
)

// firstStatusTimeout bounds how long tend waits for a new, still running
// supervisor's first status write. One that exits fails the wait at once, so
// the bound only matters for a slow one: six supervisors starting at once in a
// VM under TCG on a loaded host took more than 15 s.
const firstStatusTimeout = 2 * time.Minute

// Tend implements platform.Platform.
func (p *Platform) Tend(ctx context.Context, beds contract.Beds, opts platform.TendOptions) (platform.TendResult, error) {
	var res platform.TendResult
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	if err := checkBeds(&beds); err != nil {
		return res, fmt.Errorf("tend: %w", err)
	}
	l := contract.Layout{StateDir: beds.StateDir}
	if err := checkOwner(l, beds); err != nil {
		return res, fmt.Errorf("tend: %w", err)
	}
	if err := l.Create(); err != nil {
		return res, fmt.Errorf("tend: %w", err)
	}
	if orchd, ok := agentBinary(beds); ok && !opts.NoStart {
		// The containerd agent starts beside the file writes and the
		// supervisors' starts, not after the first of their leaves.
		release := agent.Hold(beds.StateDir, orchd, beds.Namespace)
		defer release()
	}
	// Units and spec files are durable before any supervisor reads them.
	var files []durable.File
	for _, b := range beds.Beds {
		for _, a := range b.Artifacts {
			files = append(files, durable.File{Path: a.Path, Data: []byte(a.Content), Mode: os.FileMode(a.Mode)})
		}
	}
	if err := durable.WriteFiles(files); err != nil {
		return res, fmt.Errorf("tend: %w", err)
	}
	if opts.NoStart {
		return res, nil
	}
	bin, err := p.orchd()
	if err != nil {
		return res, err
	}
	wanted := withRequires(beds.Beds, opts.Only)
	var todo []contract.Bed
	for _, b := range beds.Beds {
		named := slices.Contains(opts.Only, b.Service)
		switch {
		case len(opts.Only) > 0 && !wanted[b.Service]:
		case b.Skip != "":
			res.Skipped = append(res.Skipped, platform.Skip{Service: b.Service, Reason: b.Skip})
			fmt.Fprintf(logw, "skipped %s: %s\n", b.Service, b.Skip)
		case b.Disabled && !named:
			res.Skipped = append(res.Skipped, platform.Skip{Service: b.Service, Reason: "disabled (name it to start it)"})
			fmt.Fprintf(logw, "skipped %s: disabled\n", b.Service)
		default:
			todo = append(todo, b)
		}
	}
	type started struct {
		service string
		pid     int
	}
	var waitFor []started
	// Processes left by supervisors that died (their inits still stopping a
	// service, e.g. a containerd-run leaf deleting its container): a new
	// supervisor must not race them.
	leftovers := map[string][]int{}
	for pid, sp := range scanUnits(l.RunDir() + "/" + beds.Namespace + ".") {
		leftovers[sp.unit] = append(leftovers[sp.unit], pid)
	}
	var pidWrites sync.WaitGroup
	pidErrs := make(chan error, len(todo))
	defer pidWrites.Wait()
	for _, b := range topoOrder(todo) {
		unit, ok := unitArtifact(b)
		if !ok {
			return res, fmt.Errorf("tend %s: bed has no unit artifact (planted for another platform?)", b.Service)
		}
		hash := supervise.UnitHash([]byte(unit.Content))
		pid := supervise.ReadPid(l.PidFile(b.Label))
		alive := supervise.Alive(pid, l.UnitFile(b.Label))
		st, stErr := supervise.ReadStatus(l.StatusFile(b.Label))
		switch {
		case alive && stErr == nil && st.UnitHash == hash:
			res.Unchanged = append(res.Unchanged, b.Service)
			fmt.Fprintf(logw, "unchanged %s\n", b.Service)
			continue
		case !alive && stErr == nil && st.UnitHash == hash && st.State == contract.StateExited && fileExists(l.ReadyFile(b.Label)):
			// A completed oneshot stays completed until its unit changes.
			res.Unchanged = append(res.Unchanged, b.Service)
			fmt.Fprintf(logw, "unchanged %s (completed)\n", b.Service)
			continue
		case alive:
			if err := stopSupervisor(ctx, pid, l.UnitFile(b.Label), graceOf(st, unit)); err != nil {
				return res, fmt.Errorf("tend %s: restart: %w", b.Service, err)
			}
			res.Restarted = append(res.Restarted, b.Service)
		default:
			res.Started = append(res.Started, b.Service)
		}
		if err := drain(ctx, leftovers[l.UnitFile(b.Label)], pid, graceOf(st, unit)); err != nil {
			return res, fmt.Errorf("tend %s: %w", b.Service, err)
		}
		// Stale state of an earlier run must not satisfy dependents.
		os.Remove(l.StatusFile(b.Label))
		os.Remove(l.ReadyFile(b.Label))
		sup, err := startSupervisor(bin, l, b.Label)
		if err != nil {
			return res, fmt.Errorf("tend %s: %w", b.Service, err)
		}
		fmt.Fprintf(logw, "started %s (supervisor pid %d)\n", b.Service, sup.Process.Pid)
		waitFor = append(waitFor, started{b.Service, sup.Process.Pid})
		// The pidfile's write runs beside the next spawns.
		pidWrites.Add(1)
		go func() {
			defer pidWrites.Done()
			if err := writePid(l, b.Label, sup); err != nil {
				pidErrs <- fmt.Errorf("tend %s: %w", b.Service, err)
			}
		}()
	}
	pidWrites.Wait()
	close(pidErrs)
	if err := <-pidErrs; err != nil {
		return res, err
	}
	for _, s := range waitFor {
		label := contract.Label(beds.Namespace, s.service)
		if err := waitFirstStatus(ctx, l, label, s.pid); err != nil {
			return res, fmt.Errorf("tend %s: %w", s.service, err)
		}
	}
	return res, nil
}

// agentBinary is the orchd that runs the containerd agent when a unit's
// start may use it (contract.Exec.Agent).
func agentBinary(beds contract.Beds) (string, bool) {
	for _, b := range beds.Beds {
		a, ok := unitArtifact(b)
		if !ok || b.Skip != "" || !strings.Contains(a.Content, `"agent"`) {
			continue
		}
		var u contract.Unit
		if json.Unmarshal([]byte(a.Content), &u) == nil && u.Exec.Agent && len(u.Exec.Start) > 0 {
			return u.Exec.Start[0], true
		}
	}
	return "", false
}

// withRequires is the set of services named in only plus, transitively, the
// enabled services they REQUIRE: `grow web` also starts the database web
// cannot run without. AFTER dependencies are ordering only and are not added.
func withRequires(beds []contract.Bed, only []string) map[string]bool {
	byName := map[string]contract.Bed{}
	for _, b := range beds {
		byName[b.Service] = b
	}
	want := map[string]bool{}
	var add func(name string, named bool)
	add = func(name string, named bool) {
		b, ok := byName[name]
		if !ok || want[name] || (b.Disabled && !named) {
			return
		}
		want[name] = true
		for _, d := range b.Requires {
			add(d, slices.Contains(only, d))
		}
	}
	for _, n := range only {
		add(n, true)
	}
	return want
}

func unitArtifact(b contract.Bed) (contract.Artifact, bool) {
	for _, a := range b.Artifacts {
		if a.Kind == contract.KindUnit {
			return a, true
		}
	}
	return contract.Artifact{}, false
}

// graceOf bounds how long the supervisor of a unit takes to stop.
func graceOf(_ contract.Status, a contract.Artifact) time.Duration {
	var u contract.Unit
	json.Unmarshal([]byte(a.Content), &u)
	return supervise.StopBound(u)
}

// startSupervisor starts `orchd supervise` detached (own session). Its
// stdout/stderr go to the supervisor log.
func startSupervisor(bin string, l contract.Layout, label string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(l.SuperviseLog(label), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("supervisor log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "supervise", "--spec", l.UnitFile(label))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Not the state dir: a supervisor must not keep it (or a mount) busy.
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start supervisor: %w", err)
	}
	// Reap it if it exits while this process lives on (tests, long-lived
	// callers); a short-lived orchd leaves that to init.
	go cmd.Wait()
	return cmd, nil
}

// writePid records a started supervisor's pid; without it the supervisor is
// killed. Replaced atomically but not synced: it names a live process, which
// a crash ends anyway (readers check the pid's command line), and N of them
// synced while N services start put N more journal commits in the way of
// containerd's own.
func writePid(l contract.Layout, label string, sup *exec.Cmd) error {
	if err := durable.Replace(l.PidFile(label), []byte(strconv.Itoa(sup.Process.Pid)+"\n"), 0o600); err != nil {
		sup.Process.Kill()
		return err
	}
	return nil
}

// waitFirstStatus waits until the supervisor pid has written its status.
func waitFirstStatus(ctx context.Context, l contract.Layout, label string, pid int) error {
	deadline := time.Now().Add(firstStatusTimeout)
	for {
		if st, err := supervise.ReadStatus(l.StatusFile(label)); err == nil && st.SupervisorPid == pid {
			return nil
		}
		if !supervise.Running(pid) {
			// It may have written its status just before exiting.
			if st, err := supervise.ReadStatus(l.StatusFile(label)); err == nil && st.SupervisorPid == pid {
				return nil
			}
			return fmt.Errorf("supervisor %d exited before writing its status; its log %s ends:\n%s", pid, l.SuperviseLog(label), tailString(l.SuperviseLog(label), 10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("supervisor %d wrote no status within %s", pid, firstStatusTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stopSupervisor SIGTERMs a supervisor and waits (bounded by grace) for it to
// exit, SIGKILLing it after that.
func stopSupervisor(ctx context.Context, pid int, unitPath string, grace time.Duration) error {
	if !supervise.Alive(pid, unitPath) {
		return nil
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if waitGone(ctx, []int{pid}, grace) {
		return nil
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if waitGone(ctx, []int{pid}, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("supervisor %d did not exit after SIGKILL", pid)
}

// drain waits (bounded) for leftover processes of a unit other than its
// supervisor (already stopped) to exit, then SIGKILLs them.
func drain(ctx context.Context, pids []int, supervisor int, bound time.Duration) error {
	var left []int
	for _, p := range pids {
		if p != supervisor {
			left = append(left, p)
		}
	}
	if len(left) == 0 || waitGone(ctx, left, bound) {
		return nil
	}
	for _, p := range left {
		syscall.Kill(p, syscall.SIGKILL)
	}
	if waitGone(ctx, left, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("processes %v of an earlier supervisor did not exit", left)
}

// waitGone reports whether every pid is gone (or a zombie) within d.
func waitGone(ctx context.Context, pids []int, d time.Duration) bool {
	return procfs.WaitGone(ctx, pids, d) == nil
}

// topoOrder orders beds so that each comes after its REQUIRES/AFTER among
// them; the parser already rejected cycles, so leftovers keep their order.
func topoOrder(beds []contract.Bed) []contract.Bed {
	idx := map[string]int{}
	for i, b := range beds {
		idx[b.Service] = i
	}
	done := make([]bool, len(beds))
	var out []contract.Bed
	var visit func(i int, depth int)
	visit = func(i, depth int) {
		if done[i] || depth > len(beds) {
			return
		}
		for _, d := range append(append([]string(nil), beds[i].Requires...), beds[i].After...) {
			if j, ok := idx[d]; ok {
				visit(j, depth+1)
			}
		}
		if !done[i] {
			done[i] = true
			out = append(out, beds[i])
		}
	}
	for i := range beds {
		visit(i, 0)
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// tailString returns the last n lines of a file, for error messages.
func tailString(path string, n int) string {
	var b strings.Builder
	if err := tail(path, n, &b); err != nil {
		return "(" + err.Error() + ")"
	}
	return b.String()
}

// checkBeds refuses Beds that would write outside their state dir, under
// another namespace's labels, or readable by others: Beds may come from a
// pipe anyone spliced, so they never passed the parser's checks.
func checkBeds(b *contract.Beds) error {
	if !config.ValidNamespace(b.Namespace) {
		return fmt.Errorf("beds namespace %q is invalid: want a DNS label", b.Namespace)
	}
	if !filepath.IsAbs(b.StateDir) {
		return fmt.Errorf("beds state dir %q must be an absolute path", b.StateDir)
	}
	root := filepath.Clean(b.StateDir) + string(filepath.Separator)
	for _, bed := range b.Beds {
		if !spec.ValidServiceName(bed.Service) {
			return fmt.Errorf("beds service name %q is invalid", bed.Service)
		}
		if want := contract.Label(b.Namespace, bed.Service); bed.Label != want {
			return fmt.Errorf("beds label %q of service %s: want %q (<namespace>.<service>)", bed.Label, bed.Service, want)
		}
		for _, a := range bed.Artifacts {
			if !strings.HasPrefix(filepath.Clean(a.Path), root) {
				return fmt.Errorf("artifact %q of service %s is outside the state dir %s", a.Path, bed.Service, b.StateDir)
			}
			if a.Mode&0o077 != 0 {
				return fmt.Errorf("artifact %s has mode %04o: state files are private (0600)", a.Path, a.Mode)
			}
		}
	}
	return nil
}

// checkOwner refuses to tend a namespace whose live services another project
// grew: the same service name there must not be silently replaced.
func checkOwner(l contract.Layout, beds contract.Beds) error {
	mine := ""
	for _, b := range beds.Beds {
		if a, ok := unitArtifact(b); ok {
			var u contract.Unit
			if json.Unmarshal([]byte(a.Content), &u) == nil && u.ProjectDir != "" {
				mine = u.ProjectDir
				break
			}
		}
	}
	if mine == "" {
		return nil
	}
	for _, lu := range liveUnits(l, beds.Namespace) {
		if lu.unit.ProjectDir != "" && lu.unit.ProjectDir != mine {
			return fmt.Errorf("namespace %q is in use by project %s (service %s is running there): give this project its own namespace (--namespace, ORCH_NAMESPACE or namespace in .orchrc), or fell that project first",
				beds.Namespace, lu.unit.ProjectDir, lu.unit.Service)
		}
	}
	return nil
}

// liveUnit is a unit of the namespace whose supervisor is alive.
type liveUnit struct {
	unit contract.Unit
	pid  int
}

// liveUnits lists the namespace's units whose supervisors are running.
func liveUnits(l contract.Layout, namespace string) []liveUnit {
	paths, _ := filepath.Glob(filepath.Join(l.RunDir(), namespace+".*.unit.json"))
	var out []liveUnit
	for _, path := range paths {
		label := strings.TrimSuffix(filepath.Base(path), ".unit.json")
		pid := supervise.ReadPid(l.PidFile(label))
		if !supervise.Alive(pid, path) {
			continue
		}
		b, err := contract.ReadPrivate(path)
		if err != nil {
			continue
		}
		var u contract.Unit
		if json.Unmarshal(b, &u) != nil {
			continue
		}
		out = append(out, liveUnit{unit: u, pid: pid})
	}
	return out
}
