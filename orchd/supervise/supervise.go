package supervise

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/durable"
	"github.com/orchd/orchd/orchd/spec"
)

// stopMargin is how long past TIMEOUT_STOP the supervisor waits for its init
// (which SIGKILLs its namespace at TIMEOUT_STOP itself) before killing it.
const stopMargin = time.Second

// Run supervises the unit at unitPath until the service reaches a final state
// (exited, failed) or ctx is cancelled (then it stops the service: state
// stopped, nil error). A failed service is reported as an error.
func Run(ctx context.Context, unitPath string) error {
	// The unit carries ENV values: refuse one others may read or write.
	raw, err := contract.ReadPrivate(unitPath)
	if err != nil {
		return fmt.Errorf("read unit: %w", err)
	}
	var u contract.Unit
	if err := json.Unmarshal(raw, &u); err != nil {
		return fmt.Errorf("read unit %s: %w", unitPath, err)
	}
	if u.Version != contract.Version {
		return fmt.Errorf("unit %s: version %q: this orchd reads version %q (rewrite it with orchd tend)", unitPath, u.Version, contract.Version)
	}
	if u.Label == "" || u.StateDir == "" || len(u.Exec.Start) == 0 {
		return fmt.Errorf("unit %s: label, state_dir and exec.start are required", unitPath)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locate orchd binary: %w", err)
	}
	// A unit without dependencies starts at once: its first status says so,
	// which spares the start path a second status write.
	first := contract.StateStarting
	if len(u.Requires)+len(u.After) > 0 {
		first = contract.StateWaiting
	}
	s := &supervisor{
		unit:   u,
		layout: contract.Layout{StateDir: u.StateDir},
		log:    slog.Default().With("service", u.Service),
		sp:     spawner{exe: "/proc/self/exe", argv0: exe, unitPath: unitPath},
		st: contract.Status{
			Label: u.Label, Service: u.Service, State: first,
			SupervisorPid: os.Getpid(), UnitHash: UnitHash(raw), Since: time.Now().UTC(),
		},
	}
	// A ready marker from an earlier run must not satisfy dependents of this one.
	os.Remove(s.layout.ReadyFile(u.Label))
	if err := s.write(); err != nil {
		return err
	}
	// Decided once: the unit does not change while this supervisor runs.
	s.agent, s.inAgent = agentRun(u)
	if u.Exec.Notify && !s.inAgent {
		if s.notify, err = listenNotify(s.layout.NotifySocket(u.Label)); err != nil {
			return s.fail(err.Error())
		}
		defer s.notify.Close()
	}
	return s.run(ctx)
}

type supervisor struct {
	unit   contract.Unit
	layout contract.Layout
	log    *slog.Logger
	sp     spawner
	out    outputs
	// notify receives the start command's sd_notify notices (Exec.Notify).
	notify *notifySocket
	// inAgent: the service runs in the state dir's containerd agent, with
	// this supervisor as its client (agent is its start command taken apart).
	inAgent bool
	agent   agentStart

	mu sync.Mutex
	st contract.Status
	// written is the status as last written: an unchanged status is not
	// written again.
	written []byte
}

// update changes the status under the lock and writes it.
func (s *supervisor) update(f func(st *contract.Status)) {
	s.mutate(f)
	s.flush()
}

// mutate changes the status under the lock without writing it; flush
// writes. Changes that arrive together (a notice with MAINPID and READY=1,
// readiness and health) become one write.
func (s *supervisor) mutate(f func(st *contract.Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.st.State
	f(&s.st)
	if s.st.State != prev {
		s.st.Since = time.Now().UTC()
	}
}

// flush writes the status if it changed since the last write.
func (s *supervisor) flush() {
	if err := s.write(); err != nil {
		s.log.Error("write status", "err", err)
	}
}

func (s *supervisor) write() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked()
}

// writeLocked writes the status file. A final state outlives the supervisor
// (survey and tend read it once it is gone): it is written durably. Any
// other state describes a live supervisor, which a crash ends anyway, so it
// is only replaced atomically (never torn, not synced): those writes are on
// every service's start path.
func (s *supervisor) writeLocked() error {
	b, err := json.MarshalIndent(s.st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode status: %w", err)
	}
	b = append(b, '\n')
	if bytes.Equal(b, s.written) {
		return nil
	}
	path := s.layout.StatusFile(s.unit.Label)
	if Final(s.st.State) {
		err = durable.WriteFile(path, b, 0o600)
	} else {
		err = durable.Replace(path, b, 0o600)
	}
	if err != nil {
		return err
	}
	s.written = b
	return nil
}

func (s *supervisor) setState(state, msg string) {
	s.log.Info("state", "state", state, "message", msg)
	s.update(func(st *contract.Status) {
		st.State, st.Message = state, msg
		if state != contract.StateRunning {
			st.Healthy = false
		}
		if state != contract.StateRunning && state != contract.StateStarting {
			st.Health = ""
		}
	})
}

// fail records a final failure and returns it as the supervisor's error.
func (s *supervisor) fail(msg string) error {
	s.setState(contract.StateFailed, msg)
	return errors.New(msg)
}

func (s *supervisor) run(ctx context.Context) error {
	var err error
	if s.out, err = openOutputs(s.layout, s.unit); err != nil {
		return s.fail(err.Error())
	}
	defer s.out.Close()
	if err := keepLogPaths(s.layout, s.unit); err != nil {
		s.log.Warn("keep log paths", "err", err)
	}

	if err := s.waitDeps(ctx); err != nil {
		if ctx.Err() != nil {
			s.setState(contract.StateStopped, "stopped while waiting for dependencies")
			return nil
		}
		return s.fail(err.Error())
	}
	return s.loop(ctx)
}

func (s *supervisor) timeoutStop() time.Duration { return timeoutStop(s.unit) }

func (s *supervisor) timeoutStart() time.Duration {
	return s.unit.Timeouts.StartTimeout()
}

func timeoutStop(u contract.Unit) time.Duration {
	return u.Timeouts.StopTimeout()
}

// leafMargin is extra grace for runtimes whose start command is a leaf that
// applies TIMEOUT_STOP itself (containerd-run, vm-run) and then needs time to
// delete what it created; SIGKILLing it at TIMEOUT_STOP would leak that.
const leafMargin = 15 * time.Second

// KillAfter is how long after a stop request a service's init SIGKILLs what
// is left: TIMEOUT_STOP for host processes, plus leafMargin for leaves.
func KillAfter(u contract.Unit) time.Duration {
	if u.Runtime != "" && u.Runtime != "bare" {
		return timeoutStop(u) + leafMargin
	}
	return timeoutStop(u)
}

// StopBound bounds how long a supervisor takes to exit after SIGTERM: the
// service's stop, post_stop, and slack. Callers waiting on a supervisor
// (tend restarting it, fell) wait this long before SIGKILLing it.
func StopBound(u contract.Unit) time.Duration {
	b := KillAfter(u) + stopMargin + 2*time.Second
	if len(u.Exec.PostStop) > 0 {
		b += timeoutStop(u)
	}
	return b
}

// loop starts the service and restarts it per policy until a final state.
func (s *supervisor) loop(ctx context.Context) error {
	u := s.unit
	r := u.Restart
	delay, burst, interval := r.DelayDuration(), r.Burst(), r.Interval()
	var restarts []time.Time
	for {
		s.setState(contract.StateStarting, "")
		pc, err := resolveProcess(u.Process)
		if err != nil {
			return s.fail(err.Error())
		}
		if len(u.Exec.PreStart) > 0 {
			code, err := s.runCommand(ctx, u.Exec.PreStart, pc, s.timeoutStart(), spawnOpts{out: s.out})
			if ctx.Err() != nil {
				s.setState(contract.StateStopped, "stopped during pre_start")
				return nil
			}
			if err != nil {
				return s.fail("pre_start: " + err.Error())
			}
			if code != 0 {
				return s.fail(fmt.Sprintf("pre_start exited with code %d", code))
			}
		}
		cg, err := s.cgroups()
		if err != nil {
			return s.fail(err.Error())
		}
		var cgDirs []string
		if cg != nil {
			cgDirs = cg.dirs
		}
		startPc := pc
		if s.notify != nil {
			// Only the start command gets the socket: it is the one whose
			// READY=1 the supervisor waits for.
			startPc.env = append(append([]string(nil), pc.env...), NotifySocketEnv+"="+s.notify.path)
		}
		o := spawnOpts{timeoutStop: KillAfter(u), out: s.out, cgroups: cgDirs, leaf: u.Exec.Leaf}
		var p *proc
		if s.inAgent {
			p, err = s.spawnAgent(s.agent, startPc, o)
		} else {
			p, err = s.sp.spawn(u.Exec.Start, startPc, o)
		}
		if err != nil {
			cg.remove()
			return s.fail(err.Error())
		}
		stopped, timedOut := s.watch(ctx, p, pc)
		cg.remove() // the init has exited, and with it its namespace
		code := p.code
		if p.err != nil {
			s.log.Warn("wait", "err", p.err)
		}
		if !(u.Oneshot && code == 0) {
			os.Remove(s.layout.ReadyFile(u.Label))
		}
		s.update(func(st *contract.Status) { st.ExitCode = &code; st.Healthy = false; st.Health = "" })
		if len(u.Exec.PostStop) > 0 {
			// post_stop runs even while stopping; it gets its own bounded context.
			if c, err := s.runCommand(context.Background(), u.Exec.PostStop, pc, s.timeoutStop(), spawnOpts{out: s.out}); err != nil || c != 0 {
				s.log.Warn("post_stop failed", "code", c, "err", err)
			}
		}
		if stopped {
			s.setState(contract.StateStopped, fmt.Sprintf("stopped (exit code %d)", code))
			return nil
		}
		failedStart := ""
		if timedOut {
			ts := s.timeoutStart()
			if u.Oneshot {
				return s.fail(fmt.Sprintf("oneshot still running after TIMEOUT_START %s; stopped (exit code %d)", ts, code))
			}
			failedStart = fmt.Sprintf("not ready within TIMEOUT_START %s; stopped (exit code %d)", ts, code)
		}
		if u.Oneshot {
			if code != 0 {
				return s.fail(fmt.Sprintf("oneshot exited with code %d", code))
			}
			if err := durable.WriteFile(s.layout.ReadyFile(u.Label), []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
				return s.fail(err.Error())
			}
			s.setState(contract.StateExited, "completed")
			return nil
		}
		// A start that timed out failed, whatever the code its stop produced.
		restart := r.Policy == spec.RestartAlways || (r.Policy == spec.RestartOnFailure && (code != 0 || failedStart != ""))
		if !restart {
			if failedStart != "" {
				return s.fail(failedStart)
			}
			if code != 0 {
				return s.fail(fmt.Sprintf("exited with code %d", code))
			}
			s.setState(contract.StateExited, "exited with code 0")
			return nil
		}
		now := time.Now()
		kept := restarts[:0]
		for _, t := range restarts {
			if now.Sub(t) < interval {
				kept = append(kept, t)
			}
		}
		restarts = kept
		if len(restarts) >= burst {
			why := fmt.Sprintf("last exit code %d", code)
			if failedStart != "" {
				why = "last start " + failedStart
			}
			return s.fail(fmt.Sprintf("start limit hit: %d restarts within %s (%s); giving up", len(restarts), interval, why))
		}
		restarts = append(restarts, now)
		s.update(func(st *contract.Status) {
			st.State, st.Restarts = contract.StateRestarting, st.Restarts+1
			st.Message = fmt.Sprintf("exited with code %d; restarting in %s", code, delay)
			if failedStart != "" {
				st.Message = failedStart + "; restarting in " + delay.String()
			}
		})
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.setState(contract.StateStopped, "stopped while waiting to restart")
			return nil
		}
	}
}

// cgroups creates the service's cgroups when its unit sets limits.
func (s *supervisor) cgroups() (*cgroupSet, error) {
	l, ok, err := limitsFrom(s.unit.Process.Resources)
	if err != nil || !ok {
		return nil, err
	}
	return newCgroups(CgroupName(s.unit.Label, s.unit.StateDir), l)
}

// stop ends a running service: the STOP command or SIGTERM, TIMEOUT_STOP grace,
// then SIGKILL of the init (the kernel kills the rest of its namespace).
func (s *supervisor) stop(p *proc, pc procCtx) {
	grace := s.timeoutStop()
	deadline := time.Now().Add(grace)
	if len(s.unit.Exec.Stop) > 0 {
		code, err := s.runCommand(context.Background(), s.unit.Exec.Stop, pc, grace, spawnOpts{out: s.out, join: p.pid})
		if err != nil || code != 0 {
			s.log.Warn("stop command failed; sending SIGTERM", "code", code, "err", err)
			p.sig(syscall.SIGTERM)
		}
		if !p.waitFor(time.Until(deadline)) {
			s.log.Warn("stop timeout; killing", "timeout", grace)
			p.kill()
		}
		return
	}
	p.sig(syscall.SIGTERM)
	if !p.waitFor(KillAfter(s.unit) + stopMargin) {
		s.log.Warn("stop timeout; killing", "timeout", grace)
		p.kill()
	}
}

// runCommand runs argv under its own init, bounded by timeout (then killed).
func (s *supervisor) runCommand(ctx context.Context, argv []string, pc procCtx, timeout time.Duration, o spawnOpts) (int, error) {
	o.timeoutStop = s.timeoutStop()
	p, err := s.sp.spawn(argv, pc, o)
	if err != nil {
		return -1, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return p.code, p.err
	case <-t.C:
		p.kill()
		return p.code, fmt.Errorf("%v timed out after %s", argv, timeout)
	case <-ctx.Done():
		p.kill()
		return p.code, ctx.Err()
	}
}
