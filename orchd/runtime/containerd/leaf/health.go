package leaf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/coreos/go-systemd/v22/daemon"

	crd "github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/runtime/healthcheck"
)

// A command HEALTHCHECK of a FROM service runs where the service lives: as a
// task exec inside its container, with the container's env, user and working
// directory. The leaf runs it (it already holds the containerd connection and
// the task) and reports each change to its supervisor as an sd_notify
// X_ORCHD_HEALTH=healthy|unhealthy notice. Cadence as the supervisor's own
// checks: fast until the first pass (dependents wait for it), then relaxed.
const (
	checkTimeout = healthcheck.Timeout
	// healthKey is the notice field the supervisor reads (supervise.HealthKey).
	healthKey = "X_ORCHD_HEALTH"
	// outputTail bounds the check output kept for the status message.
	outputTail = 512
)

// CheckArgv is how a command HEALTHCHECK executes inside a container
// (healthcheck.Argv: /bin/sh -c only for shell syntax).
func CheckArgv(hc string) ([]string, error) { return healthcheck.Argv(hc) }

// wantsHealth reports whether this leaf runs the service's healthcheck: a
// command check, a supervisor listening, and a service that is not a oneshot.
func (l *leaf) wantsHealth() bool {
	hc := strings.TrimSpace(l.rs.Service.Healthcheck)
	return healthcheck.IsCommand(hc) && !l.rs.Service.Oneshot && l.canNotify()
}

// canNotify reports whether a supervisor listens for this leaf's notices.
func (l *leaf) canNotify() bool {
	if l.opts.Notify != nil {
		return true
	}
	getenv := l.opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	return getenv("NOTIFY_SOCKET") != ""
}

// healthLoop checks until ctx ends, notifying each change of the verdict.
func (l *leaf) healthLoop(ctx context.Context, h *taskHold, fifoDir string) {
	argv, err := CheckArgv(strings.TrimSpace(l.rs.Service.Healthcheck))
	if err != nil {
		l.notify(healthKey + "=unhealthy\nSTATUS=" + oneLine(err.Error()))
		return
	}
	// The current container and task: both are reloaded after a containerd restart.
	check := func(ctx context.Context, seq int64) error {
		return l.check(ctx, h.Container(), h.Task(), argv, fifoDir, seq)
	}
	healthcheck.Loop(ctx, check, func(verdict string, err error) {
		msg := ""
		if err != nil {
			msg = "healthcheck: " + oneLine(err.Error())
		}
		l.log.Info("healthcheck", "verdict", verdict, "detail", msg)
		l.notify(fmt.Sprintf("%s=%s\nSTATUS=%s", healthKey, verdict, msg))
	})
}

// check runs argv once as an exec process of task, bounded by checkTimeout,
// and deletes the process afterwards whatever happened.
func (l *leaf) check(ctx context.Context, ctr client.Container, task client.Task, argv []string, fifoDir string, n int64) error {
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	spec, err := ctr.Spec(cctx)
	if err != nil {
		return fmt.Errorf("read container spec: %w", err)
	}
	if spec.Process == nil {
		return errors.New("container spec has no process")
	}
	ps := *spec.Process // the container's env, user, cwd, capabilities
	ps.Args, ps.Terminal, ps.ConsoleSize = argv, false, nil
	out := &tailBuffer{max: outputTail}
	ioOpts := []cio.Opt{cio.WithStreams(nil, out, out)}
	if fifoDir != "" {
		ioOpts = append(ioOpts, cio.WithFIFODir(fifoDir))
	}
	id := fmt.Sprintf("healthcheck-%d", n)
	proc, err := task.Exec(cctx, id, &ps, cio.NewCreator(ioOpts...))
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	defer func() {
		dctx, dcancel := l.cleanupCtx()
		defer dcancel()
		if _, err := crd.DeleteProcess(dctx, proc); err != nil && !errdefs.IsNotFound(err) {
			l.log.Warn("delete healthcheck process", "exec", id, "err", err)
		}
	}()
	exitC, err := proc.Wait(cctx)
	if err != nil {
		return fmt.Errorf("wait: %w", err)
	}
	if err := proc.Start(cctx); err != nil {
		return fmt.Errorf("start %s: %w", argv[0], err)
	}
	select {
	case st := <-exitC:
		code, _, err := st.Result()
		if err != nil {
			return err
		}
		if code != 0 {
			return fmt.Errorf("exit code %d: %s", code, strings.TrimSpace(out.String()))
		}
		return nil
	case <-cctx.Done():
		kctx, kcancel := l.cleanupCtx()
		defer kcancel()
		_ = proc.Kill(kctx, syscall.SIGKILL)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("timed out after %s", checkTimeout)
	}
}

// notify sends one sd_notify datagram; a leaf without a supervisor socket
// sends nothing.
func (l *leaf) notify(state string) {
	if l.opts.Notify != nil {
		if err := l.opts.Notify(state); err != nil {
			l.log.Warn("notify supervisor", "err", err)
		}
		return
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		l.log.Warn("notify supervisor", "err", err)
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > outputTail {
		s = s[len(s)-outputTail:]
	}
	return s
}

// tailBuffer keeps the last max bytes written to it; safe for the cio copy
// goroutines.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
