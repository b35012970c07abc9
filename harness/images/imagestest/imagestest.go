// Package imagestest runs fixture images in a real containerd for tests:
// one container per call, removed (task, container, snapshot) before return.
package imagestest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/orchd/orchd/fixtures/probe/report"
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

// WithRlimit sets one POSIX rlimit (e.g. "RLIMIT_NOFILE"), replacing the default.
func WithRlimit(typ string, soft, hard uint64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		var kept []specs.POSIXRlimit
		for _, r := range s.Process.Rlimits {
			if r.Type != typ {
				kept = append(kept, r)
			}
		}
		s.Process.Rlimits = append(kept, specs.POSIXRlimit{Type: typ, Soft: soft, Hard: hard})
		return nil
	}
}

// WithBlkioWeight sets the block IO weight (runc writes blkio.weight or
// blkio.bfq.weight on v1, io.bfq.weight or io.weight on v2).
func WithBlkioWeight(w uint16) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.BlockIO == nil {
			s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{}
		}
		s.Linux.Resources.BlockIO.Weight = &w
		return nil
	}
}

// Run unpacks img, runs a container named id with the image's entrypoint
// and args in place of its Cmd (plus extra spec options), waits for it to
// exit (bounded by ctx) and removes the task, container and snapshot. FIFOs
// are created in fifoDir so nothing is left under /run/containerd/fifo.
func Run(ctx context.Context, c *client.Client, img client.Image, id, fifoDir string, args []string, opts ...oci.SpecOpts) (res Result, err error) {
	if err := img.Unpack(ctx, Snapshotter); err != nil {
		return res, fmt.Errorf("unpack %s: %w", img.Name(), err)
	}
	ctr, err := c.NewContainer(ctx, id,
		client.WithSnapshotter(Snapshotter),
		client.WithNewSnapshot(id+"-snapshot", img),
		client.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfigArgs(img, args)}, opts...)...),
	)
	if err != nil {
		return res, fmt.Errorf("create container %s: %w", id, err)
	}
	cleanupCtx := context.WithoutCancel(ctx)
	defer func() {
		if derr := ctr.Delete(cleanupCtx, client.WithSnapshotCleanup); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete container %s: %w", id, derr))
		}
	}()

	var stdout, stderr bytes.Buffer
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr), cio.WithFIFODir(fifoDir)))
	if err != nil {
		return res, fmt.Errorf("create task %s: %w", id, err)
	}
	defer func() {
		if _, derr := task.Delete(cleanupCtx, client.WithProcessKill); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete task %s: %w", id, derr))
		}
	}()
	exitCh, err := task.Wait(ctx)
	if err != nil {
		return res, fmt.Errorf("wait task %s: %w", id, err)
	}
	if err := task.Start(ctx); err != nil {
		return res, fmt.Errorf("start task %s: %w", id, err)
	}
	select {
	case st := <-exitCh:
		code, _, werr := st.Result()
		if werr != nil {
			return res, fmt.Errorf("task %s exit status: %w", id, werr)
		}
		res.ExitCode = code
	case <-ctx.Done():
		_ = task.Kill(cleanupCtx, syscall.SIGKILL, client.WithKillAll)
		return res, fmt.Errorf("task %s did not exit: %w (stdout %q stderr %q)", id, ctx.Err(), stdout.String(), stderr.String())
	}
	// The task's exit closes the FIFOs; the copy goroutines finish shortly after.
	waitIO(task, 10*time.Second)
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	return res, nil
}

// waitIO waits for the task's output copiers to drain, bounded.
func waitIO(task client.Task, limit time.Duration) {
	done := make(chan struct{})
	go func() {
		if io := task.IO(); io != nil {
			io.Wait()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(limit):
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
