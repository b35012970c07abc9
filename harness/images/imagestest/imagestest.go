// Package imagestest runs fixture images in a real containerd for tests:
// one container per call, removed (task, container, snapshot) before return.
package imagestest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/orchd/orchd/fixtures/probe/report"
	"github.com/orchd/orchd/harness/daemon/daemontest"
)

// Snapshotter is the snapshotter fixture containers use (unpacking must honor whiteouts).
const Snapshotter = "overlayfs"

// Result is what a finished container produced.
type Result struct {
	Stdout   string
	Stderr   string
	ExitCode uint32
}

// Report finds the probe report in the container's stdout.
func (r Result) Report() (*report.Report, error) {
	rep, err := report.Find([]byte(r.Stdout))
	if err != nil {
		return nil, fmt.Errorf("%w (exit %d, stderr %q)", err, r.ExitCode, r.Stderr)
	}
	return rep, nil
}

// CgroupMount exposes the container's own cgroup at /sys/fs/cgroup (read-only).
// containerd's default spec has no cgroup mount (CRI adds one), so without
// it the probe cannot read its limits.
var CgroupMount = specs.Mount{
	Destination: "/sys/fs/cgroup",
	Type:        "cgroup",
	Source:      "cgroup",
	Options:     []string{"ro", "nosuid", "noexec", "nodev"},
}

// WithCgroupfs adds CgroupMount to the spec.
func WithCgroupfs() oci.SpecOpts { return oci.WithMounts([]specs.Mount{CgroupMount}) }

// Run unpacks img, runs a container named id with the image's entrypoint
// and args in place of its Cmd (plus extra spec options), waits for it to
// exit (bounded by ctx) and removes the task, container and snapshot. FIFOs
// are created in fifoDir so nothing is left under /run/containerd/fifo.
func Run(ctx context.Context, c *client.Client, img client.Image, id, fifoDir string, args []string, opts ...oci.SpecOpts) (res Result, err error) {
	task, err := Start(ctx, c, img, id, fifoDir, args, opts...)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, task.Delete(context.WithoutCancel(ctx))) }()
	code, err := task.Wait(ctx)
	res = Result{Stdout: task.Stdout(), Stderr: task.Stderr(), ExitCode: code}
	return res, err
}

// Task is a started fixture container.
type Task struct {
	id     string
	ctr    client.Container
	task   client.Task
	exitCh <-chan client.ExitStatus
	stdout syncBuffer
	stderr syncBuffer

	exited bool
	code   uint32
}

// Start is Run without waiting: the caller signals, waits and deletes.
func Start(ctx context.Context, c *client.Client, img client.Image, id, fifoDir string, args []string, opts ...oci.SpecOpts) (_ *Task, err error) {
	if err := img.Unpack(ctx, Snapshotter); err != nil {
		return nil, fmt.Errorf("unpack %s: %w", img.Name(), err)
	}
	t := &Task{id: id}
	t.ctr, err = c.NewContainer(ctx, id,
		client.WithSnapshotter(Snapshotter),
		client.WithNewSnapshot(id+"-snapshot", img),
		client.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfigArgs(img, args)}, opts...)...),
	)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Delete(context.WithoutCancel(ctx)))
		}
	}()
	t.task, err = t.ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &t.stdout, &t.stderr), cio.WithFIFODir(fifoDir)))
	if err != nil {
		return nil, fmt.Errorf("create task %s: %w", id, err)
	}
	if t.exitCh, err = t.task.Wait(ctx); err != nil {
		return nil, fmt.Errorf("wait task %s: %w", id, err)
	}
	if err := t.task.Start(ctx); err != nil {
		return nil, fmt.Errorf("start task %s: %w", id, err)
	}
	return t, nil
}

// Pid is the task's init pid on the host.
func (t *Task) Pid() uint32 { return t.task.Pid() }

// Kill sends sig to the task's init process.
func (t *Task) Kill(ctx context.Context, sig syscall.Signal) error {
	if err := t.task.Kill(ctx, sig); err != nil {
		return fmt.Errorf("kill %s with %s: %w", t.id, sig, err)
	}
	return nil
}

// WaitStderr polls until stderr contains substr, bounded by ctx.
func (t *Task) WaitStderr(ctx context.Context, substr string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(t.stderr.String(), substr) {
		if t.Exited() {
			return fmt.Errorf("task %s exited (%d) before printing %q (stderr %q)", t.id, t.code, substr, t.stderr.String())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("task %s: no %q on stderr: %w (stderr %q)", t.id, substr, ctx.Err(), t.stderr.String())
		case <-tick.C:
		}
	}
	return nil
}

// Exited reports whether the task has exited, without blocking.
func (t *Task) Exited() bool {
	if t.exited {
		return true
	}
	select {
	case st := <-t.exitCh:
		t.exited, t.code = true, st.ExitCode()
		return true
	default:
		return false
	}
}

// Wait waits for the task to exit (bounded by ctx) and returns its exit code;
// its output is complete afterwards.
func (t *Task) Wait(ctx context.Context) (uint32, error) {
	if !t.exited {
		select {
		case st := <-t.exitCh:
			code, _, err := st.Result()
			if err != nil {
				return 0, fmt.Errorf("task %s exit status: %w", t.id, err)
			}
			t.exited, t.code = true, code
		case <-ctx.Done():
			return 0, fmt.Errorf("task %s did not exit: %w (stdout %q stderr %q)", t.id, ctx.Err(), t.stdout.String(), t.stderr.String())
		}
	}
	// The exit closes the FIFOs; the copiers finish right after.
	waitIO(t.task, 10*time.Second)
	return t.code, nil
}

// Stdout is what the task printed so far.
func (t *Task) Stdout() string { return t.stdout.String() }

// Stderr is what the task printed so far.
func (t *Task) Stderr() string { return t.stderr.String() }

// Delete kills what is still running and removes the task, container and snapshot.
func (t *Task) Delete(ctx context.Context) error {
	var errs []error
	if t.task != nil {
		if _, err := t.task.Delete(ctx, client.WithProcessKill); err != nil {
			errs = append(errs, fmt.Errorf("delete task %s: %w", t.id, err))
		}
		t.task = nil
	}
	if t.ctr != nil {
		if err := t.ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil {
			errs = append(errs, fmt.Errorf("delete container %s: %w", t.id, err))
		}
		t.ctr = nil
	}
	return errors.Join(errs...)
}

type syncBuffer = daemontest.SyncBuffer

// waitIO waits for the task's output copiers to drain, bounded.
func waitIO(task client.Task, limit time.Duration) {
	done := make(chan struct{})
	go func() {
		if io := task.IO(); io != nil {
			io.Wait()
		}
		close(done)
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}

// Remaining lists what is left in the client's namespace: containers and
// snapshots of the fixture snapshotter. Tests assert it is empty at the end.
func Remaining(ctx context.Context, c *client.Client) ([]string, error) {
	var left []string
	ctrs, err := c.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, ct := range ctrs {
		left = append(left, "container "+ct.ID())
	}
	err = c.SnapshotService(Snapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if info.Kind != snapshots.KindCommitted {
			left = append(left, "active snapshot "+info.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk snapshots: %w", err)
	}
	return left, nil
}
