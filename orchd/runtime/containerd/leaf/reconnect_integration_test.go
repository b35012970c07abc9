package leaf_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/orchd/orchd/orchd/contract"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/runtime/containerd/leaf"
	"github.com/orchd/orchd/orchd/spec"
)

// running is one leaf run in the background.
type running struct {
	out, errb syncBuffer
	done      chan result
	ended     chan struct{}
	stop      context.CancelFunc
	pid       int // the task's host pid
}

func (e *env) start(t *testing.T, svc spec.Service, opts leaf.Options) *running {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	rctx, stop := context.WithCancel(ctx)
	r := &running{done: make(chan result, 1), ended: make(chan struct{}), stop: stop}
	opts.Stdout, opts.Stderr, opts.Log = &r.out, &r.errb, e.leafLogIO
	go func() {
		code, err := leaf.Run(rctx, e.runSpec(svc), opts)
		r.done <- result{code: code, err: err, stdout: r.out.String(), stderr: r.errb.String()}
		close(r.ended)
	}()
	task := e.waitRunning(t, e.client(t), crd.ContainerID(e.ns, svc.Name), time.Minute, r.ended)
	r.pid = int(task.Pid())
	// Running in containerd is not yet started for the leaf: its Start call
	// returns after that (a daemon killed in between fails the start).
	eventually(t, time.Minute, "the leaf saw its task start", func() bool {
		return strings.Contains(e.leafLog.String(), "container started")
	})
	return r
}

func (r *running) wait(t *testing.T, within time.Duration) result {
	t.Helper()
	select {
	case res := <-r.done:
		return res
	case <-time.After(within):
		t.Fatalf("leaf still running after %s", within)
		return result{}
	}
}

// eventually polls cond until it holds (poll interval, bounded by within).
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

var tickLine = regexp.MustCompile(`^tick (\d+)$`)

// ticks checks that out holds tick 1..n in order, none missing or repeated,
// and returns n.
func ticks(t *testing.T, out string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		m := tickLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if got, _ := strconv.Atoi(m[1]); got != n+1 {
			t.Fatalf("output lost or repeated a line: tick %d after tick %d:\n%s", got, n, out)
		}
		n++
	}
	return n
}

// restartDaemon takes the fixture's containerd down (SIGKILL or a clean
// SIGTERM stop; shims survive either way), runs between() while it is down,
// and starts it again on the same dirs.
func (f *fixture) restartDaemon(t *testing.T, clean bool, between func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	down := f.d.Kill
	if clean {
		down = f.d.Terminate
	}
	if err := down(); err != nil {
		t.Fatalf("take containerd down: %v", err)
	}
	if between != nil {
		between()
	}
	if err := f.d.Restart(ctx); err != nil {
		t.Fatalf("restart containerd: %v\n%s", err, f.d.LogTail(30))
	}
}

// keepDaemonUp restarts the fixture's containerd after the test if the test
// left it down, before the leak check of its env (cleanups run last first).
func (f *fixture) keepDaemonUp(t *testing.T) {
	t.Cleanup(func() {
		if f.d.Pid() == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := f.d.Restart(ctx); err != nil {
				t.Errorf("restart containerd after the test: %v", err)
			}
		}
	})
}

// A containerd restart (SIGKILL, then a clean stop) while the task runs: the
// leaf re-attaches to the same task, its output continues with no line lost
// or read twice, and a stop afterwards works as usual.
func (f *fixture) testContainerdRestart(t *testing.T) {
	e := f.env(t)
	f.keepDaemonUp(t)
	svc := f.probeService(t, "ticker", "tick 50ms")
	svc.Timeouts.Stop = "5s"
	r := e.start(t, svc, leaf.Options{})
	for _, clean := range []bool{false, true} {
		before := ticks(t, r.out.String())
		reattached := strings.Count(e.leafLog.String(), "re-attached to the task")
		f.restartDaemon(t, clean, nil)
		eventually(t, time.Minute, "leaf re-attached", func() bool {
			return strings.Count(e.leafLog.String(), "re-attached to the task") > reattached
		})
		eventually(t, 30*time.Second, "output continues", func() bool { return ticks(t, r.out.String()) > before+10 })
		select {
		case res := <-r.done:
			t.Fatalf("leaf ended after the restart (clean stop %v): code %d, err %v", clean, res.code, res.err)
		default:
		}
		c, err := f.d.Client()
		if err != nil {
			t.Fatal(err)
		}
		ctx := namespaces.WithNamespace(context.Background(), e.ns)
		task, err := loadTask(ctx, c, crd.ContainerID(e.ns, svc.Name))
		c.Close()
		if err != nil || int(task.Pid()) != r.pid {
			t.Fatalf("after the restart (clean stop %v): task %v (err %v), want the same task pid %d", clean, task, err, r.pid)
		}
	}
	r.stop()
	res := r.wait(t, time.Minute)
	if res.err != nil || res.code != 143 {
		t.Fatalf("stop after the restarts: code %d err %v, want 143 (SIGTERM)", res.code, res.err)
	}
	t.Logf("%d ticks across two containerd restarts, none lost or repeated", ticks(t, res.stdout))
}

// A task that exits while containerd is down is reported once containerd is
// back: with its exit code (1.6), or as LostExitCode when containerd kept none.
func (f *fixture) testExitWhileDaemonDown(t *testing.T) {
	e := f.env(t)
	f.keepDaemonUp(t)
	r := e.start(t, f.probeService(t, "crasher", "crash-after 3s 7"), leaf.Options{})
	f.restartDaemon(t, true, func() {
		eventually(t, time.Minute, "the task exits while containerd is down", func() bool {
			return syscall.Kill(r.pid, 0) != nil
		})
	})
	res := r.wait(t, time.Minute)
	// containerd 1.6 keeps the exit status in the shim; 2.x removes a shim
	// with no process left as leaked when it restarts, status and all.
	want := 7
	if f.tc.Major() >= 2 {
		want = leaf.LostExitCode
		if !strings.Contains(e.leafLog.String(), "kept no exit status") {
			t.Errorf("the leaf does not say the exit status was lost:\n%s", e.leafLog)
		}
	}
	if res.err != nil || res.code != want {
		t.Fatalf("code %d err %v, want exit code %d", res.code, res.err, want)
	}
}

// Past the bound the leaf gives up with an error naming it; what it leaves
// in containerd is swept (the env's leak check).
func (f *fixture) testReconnectBound(t *testing.T) {
	e := f.env(t)
	f.keepDaemonUp(t)
	r := e.start(t, f.probeService(t, "orphan", "sleep forever"), leaf.Options{ReconnectBound: 2 * time.Second})
	if err := f.d.Kill(); err != nil {
		t.Fatal(err)
	}
	res := r.wait(t, time.Minute)
	if res.err == nil || !strings.Contains(res.err.Error(), "containerd unreachable for 2s") {
		t.Fatalf("code %d err %v, want an error naming the 2s bound", res.code, res.err)
	}
	// The task outlived its leaf in its shim: what fell's sweep is for.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := f.d.Restart(ctx); err != nil {
		t.Fatalf("restart containerd: %v", err)
	}
	rt := &crd.Runtime{Socket: f.d.Address()}
	if err := rt.Sweep(ctx, contract.Env{ProjectDir: e.projDir, StateDir: e.stateDir, DataDir: e.dataDir, Namespace: e.ns}, nil); err != nil {
		t.Fatalf("sweep: %v", err)
	}
}

func loadTask(ctx context.Context, c *client.Client, id string) (client.Task, error) {
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load container: %w", err)
	}
	return ctr.Task(ctx, nil)
}
