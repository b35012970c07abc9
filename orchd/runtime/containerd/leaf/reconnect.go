package leaf

// Surviving a containerd restart. containerd is built so that tasks outlive
// the daemon: each lives in its shim, which keeps running, keeps the task's
// exit status, and keeps writing its stdio into the FIFOs this leaf reads.
// So when the leaf's connection drops (containerd upgraded, restarted, or
// crashed), the leaf does not give up: it dials again with a bounded backoff,
// loads its container and task from the restarted daemon, and waits again.
// The FIFOs' read ends never close in this process, so the output is neither
// lost nor read twice; a task that ended meanwhile is reported with its exit
// status as soon as the daemon is back.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

const (
	// ReconnectBound is how long a leaf keeps trying to reach containerd
	// again after its connection drops. Within it, the leaf re-attaches to
	// its task and the service carries on; after it, the leaf exits with an
	// error and the supervisor applies RESTART.
	ReconnectBound = 60 * time.Second
	// Backoff between attempts: doubling from backoffFirst up to backoffMax.
	backoffFirst = 100 * time.Millisecond
	backoffMax   = 2 * time.Second
	// redialTimeout bounds one attempt (dial + serving check).
	redialTimeout = 2 * time.Second
	// LostExitCode reports a task that ended while containerd was down when
	// containerd came back without its exit status (containerd 2.x removes
	// the shim of a task with no processes left as leaked, exit and all);
	// 255 is what containerd itself reports for an exit it could not read.
	LostExitCode = 255
)

// errTaskGone: containerd is back, the task and its process are gone.
var errTaskGone = errors.New("task gone")

// taskHold is the leaf's hold on its task: the current task object (a new one
// after each reconnection) and the one exit status the leaf acts on.
type taskHold struct {
	l     *leaf
	id    string
	io    cio.IO // the stdio attached at create; reused on every re-attach
	pid   int    // the task's host pid
	bound time.Duration
	exits chan client.ExitStatus // one status: the task's exit, or why the leaf lost it
	done  chan struct{}          // closed once that status is known

	mu       sync.Mutex
	ctr      client.Container
	task     client.Task
	attached chan struct{} // closed (and replaced) at each re-attach
}

func (l *leaf) hold(ctr client.Container, task client.Task) *taskHold {
	bound := l.opts.ReconnectBound
	if bound <= 0 {
		bound = ReconnectBound
	}
	return &taskHold{l: l, id: ctr.ID(), io: task.IO(), pid: int(task.Pid()), bound: bound, ctr: ctr, task: task,
		exits: make(chan client.ExitStatus, 1), done: make(chan struct{}), attached: make(chan struct{})}
}

// Container is the current container object.
func (h *taskHold) Container() client.Container {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ctr
}

// Task is the current task object.
func (h *taskHold) Task() client.Task {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.task
}

// Exits delivers the task's exit status once, whatever containerd restarts
// happened in between; its error is set when the task could not be followed
// (containerd away longer than the bound, or back without the task).
func (h *taskHold) Exits() <-chan client.ExitStatus { return h.exits }

// watch starts waiting for the task's exit, following it across reconnections.
func (h *taskHold) watch(ctx context.Context) error {
	exitC, err := h.Task().Wait(ctx)
	if err != nil {
		return err
	}
	go h.follow(exitC)
	return nil
}

func (h *taskHold) follow(exitC <-chan client.ExitStatus) {
	defer close(h.done)
	for {
		st, ok := <-exitC
		if !ok {
			st = *client.NewExitStatus(client.UnknownExitStatus, time.Time{}, errors.New("wait ended without a status"))
		}
		if st.Error() == nil {
			h.exits <- st
			return
		}
		h.l.log.Warn("lost the connection to containerd; reconnecting", "err", st.Error(), "bound", h.bound)
		next, err := h.reattach()
		if errors.Is(err, errTaskGone) {
			h.l.log.Warn("the task ended while containerd was down, and containerd kept no exit status; reporting it as exit code 255", "pid", h.pid)
			h.exits <- *client.NewExitStatus(LostExitCode, time.Now(), nil)
			return
		}
		if err != nil {
			h.l.log.Error("could not re-attach to the task", "err", err)
			h.exits <- *client.NewExitStatus(client.UnknownExitStatus, time.Time{}, err)
			return
		}
		exitC = next
	}
}

// reattach dials containerd until it serves again (bounded), then loads the
// container's task and waits on it.
func (h *taskHold) reattach() (<-chan client.ExitStatus, error) {
	deadline := time.Now().Add(h.bound)
	wait := backoffFirst
	for attempt := 1; ; attempt++ {
		exitC, err := h.attach()
		if err == nil {
			return exitC, nil
		}
		if errdefs.IsNotFound(err) {
			if syscall.Kill(h.pid, 0) == syscall.ESRCH {
				return nil, errTaskGone
			}
			return nil, fmt.Errorf("containerd is back without the task of %s: %w", h.id, err)
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("containerd unreachable for %s (%d attempts), the task of %s is no longer followed: %w", h.bound, attempt, h.id, err)
		}
		time.Sleep(wait) // retry backoff while the daemon is away
		wait = min(2*wait, backoffMax)
	}
}

// attach is one attempt: a fresh client, the container's task with the
// leaf's own stdio, and a wait on it.
func (h *taskHold) attach() (<-chan client.ExitStatus, error) {
	rs := h.l.rs
	ctx := h.l.bg()
	c, err := crd.Connect(ctx, crd.ResolveSocket(rs.Socket), rs.Namespace, redialTimeout)
	if err != nil {
		return nil, err
	}
	ctr, task, exitC, err := func() (client.Container, client.Task, <-chan client.ExitStatus, error) {
		ctr, err := c.LoadContainer(ctx, h.id)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("load container: %w", err)
		}
		task, err := ctr.Task(ctx, func(*cio.FIFOSet) (cio.IO, error) { return h.io, nil })
		if err != nil {
			return nil, nil, nil, fmt.Errorf("load task: %w", err)
		}
		exitC, err := task.Wait(ctx)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("wait task: %w", err)
		}
		return ctr, task, exitC, nil
	}()
	if err != nil {
		c.Close()
		return nil, err
	}
	h.l.setClient(c)
	h.mu.Lock()
	h.ctr, h.task = ctr, task
	close(h.attached)
	h.attached = make(chan struct{})
	h.mu.Unlock()
	h.l.log.Info("re-attached to the task after containerd came back", "pid", task.Pid())
	return exitC, nil
}

// kill signals the task. When containerd is away, it waits for the leaf to
// re-attach and signals again (or gives up with the leaf, or with ctx).
func (h *taskHold) kill(ctx context.Context, sig syscall.Signal, opts ...client.KillOpts) error {
	for {
		h.mu.Lock()
		task, attached := h.task, h.attached
		h.mu.Unlock()
		err := task.Kill(ctx, sig, opts...)
		if err == nil || errdefs.IsNotFound(err) {
			return err
		}
		select {
		case <-attached:
		case <-h.done:
			return err
		case <-ctx.Done():
			return err
		}
	}
}

// delete kills what is left of the task and deletes it, on the current connection.
func (h *taskHold) delete() {
	cctx, cancel := h.l.cleanupCtx()
	defer cancel()
	if err := crd.DeleteTask(cctx, h.l.client(), h.Task()); err != nil {
		h.l.log.Warn("delete task", "err", err)
	}
}
