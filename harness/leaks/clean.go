package leaks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/orchd/procfs"

	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

// cleanTimeout bounds each blocking step of Clean.
const cleanTimeout = 30 * time.Second

// Clean force-deletes everything Inspect would report for t (images too when
// t.CountImages), then collects garbage. Errors are collected, not fatal:
// Clean goes as far as it can.
func Clean(ctx context.Context, t Target) error {
	if err := t.check(); err != nil {
		return err
	}
	c, err := client.New(procfs.TrimUnix(t.Address))
	if err != nil {
		return fmt.Errorf("leaks: clean: connect %s: %w", t.Address, err)
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, t.Namespace)
	var errs []error
	note := func(err error) {
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}

	// Supervisors first, so nothing restarts what we delete below.
	s, err := scan(ctx, c, t)
	if err != nil {
		return fmt.Errorf("leaks: clean: %w", err)
	}
	note(killProcs(ctx, s.procs))

	tctx, cancel := context.WithTimeout(ctx, cleanTimeout)
	note(daemon.KillNamespaceTasks(tctx, c))
	cancel()
	note(daemon.KillShims(ctx, "", func(sh procfs.Shim) bool {
		return slices.ContainsFunc(s.shims, func(x procfs.Shim) bool { return x.Pid == sh.Pid })
	}))

	if s, err = scan(ctx, c, t); err != nil {
		return fmt.Errorf("leaks: clean: %w", err)
	}
	for _, id := range s.tasks {
		// A task without a loadable container (or a dead shim): force it out.
		_, err := c.TaskService().Delete(ctx, taskDelete(id))
		note(wrap("delete task "+id, err))
	}
	for _, id := range s.containers {
		note(wrap("delete container "+id, c.ContainerService().Delete(ctx, id)))
	}
	for _, l := range s.leases {
		note(wrap("delete lease "+l.ID, c.LeasesService().Delete(ctx, l)))
	}
	for _, ref := range s.ingests {
		note(wrap("abort ingest "+ref, c.ContentStore().Abort(ctx, ref)))
	}
	if t.CountImages {
		for _, name := range s.images {
			note(wrap("delete image "+name, c.ImageService().Delete(ctx, name)))
		}
	}
	note(removeSnapshots(ctx, c, s))
	note(unmount(s.mounts))
	note(removeCgroups(ctx, s.cgroups))
	for _, f := range s.files {
		note(wrap("remove "+f, os.RemoveAll(f)))
	}
	daemon.RemoveEmptyNamespaceDirs(t.Namespace)
	note(crd.SyncGC(ctx, c))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("leaks: clean %s namespace %s: %w", t.Address, t.Namespace, err)
	}
	return nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

// removeSnapshots deletes children before parents: each pass removes the
// leaves, so at most depth passes are needed.
func removeSnapshots(ctx context.Context, c *client.Client, s *scanned) error {
	var errs []error
	for sn, infos := range s.snapshots {
		left := infos
		for len(left) > 0 {
			parents := map[string]bool{}
			for _, in := range left {
				parents[in.Parent] = true
			}
			var next []string
			removed := 0
			for _, in := range left {
				if parents[in.Name] {
					continue
				}
				if err := c.SnapshotService(sn).Remove(ctx, in.Name); err != nil && !errdefs.IsNotFound(err) {
					errs = append(errs, fmt.Errorf("remove snapshot %s/%s: %w", sn, in.Name, err))
					continue
				}
				removed++
				next = append(next, in.Name)
			}
			if removed == 0 {
				break
			}
			left = slices.DeleteFunc(left, func(in snapshotsInfo) bool { return slices.Contains(next, in.Name) })
		}
	}
	return errors.Join(errs...)
}

func killProcs(ctx context.Context, ps []procfs.Proc) error {
	if len(ps) == 0 {
		return nil
	}
	all, err := procfs.Processes()
	if err != nil {
		return err
	}
	var pids []int
	for _, p := range ps {
		pids = append(pids, p.Pid)
		pids = append(pids, procfs.Descendants(all, p.Pid)...)
		procfs.KillTree(all, p.Pid)
	}
	return procfs.WaitGone(ctx, pids, cleanTimeout)
}

func unmount(ms []procfs.Mount) error {
	var errs []error
	for _, m := range ms {
		if err := syscall.Unmount(m.Point, 0); err != nil {
			if err := syscall.Unmount(m.Point, procfs.MntDetach); err != nil && !errors.Is(err, syscall.EINVAL) {
				errs = append(errs, fmt.Errorf("unmount %s: %w", m.Point, err))
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroups kills what is still inside each cgroup, then removes them
// deepest first (a cgroup dir is removed with rmdir, never recursively).
func removeCgroups(ctx context.Context, dirs []string) error {
	sorted := slices.Clone(dirs)
	slices.SortFunc(sorted, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var errs []error
	for _, d := range sorted {
		if raw, err := os.ReadFile(d + "/cgroup.procs"); err == nil {
			var pids []int
			for _, f := range strings.Fields(string(raw)) {
				var pid int
				if _, err := fmt.Sscanf(f, "%d", &pid); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					pids = append(pids, pid)
				}
			}
			if err := procfs.WaitGone(ctx, pids, cleanTimeout); err != nil {
				errs = append(errs, fmt.Errorf("cgroup %s: %w", d, err))
			}
		}
		if err := rmdirRetry(d); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// rmdirRetry retries EBUSY: the kernel releases a cgroup shortly after its
// last task is reaped.
func rmdirRetry(d string) error {
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond) // the release has no event to wait on
	defer tick.Stop()
	for {
		err := syscall.Rmdir(d)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return err
		}
		<-tick.C
	}
}

type snapshotsInfo = snapshots.Info

func taskDelete(id string) *tasksapi.DeleteTaskRequest {
	return &tasksapi.DeleteTaskRequest{ContainerID: id}
}
