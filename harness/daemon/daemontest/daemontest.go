// Package daemontest gives tests real private containerd daemons for every
// toolchain on the host, and a tiny container (a static sleeper binary in a
// hand-made snapshot) so they can run tasks without an image.
package daemontest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/orchd/procfs"
)

// logWriter sends build progress to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Toolchains resolves the system containerd and the pinned 2.x (building it
// if needed). Either missing fails the test with the install command.
func Toolchains(t testing.TB) []*toolchain.Toolchain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	var out []*toolchain.Toolchain
	for _, want := range []string{toolchain.System, toolchain.Pinned} {
		tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: want, Progress: logWriter{t}})
		if err != nil {
			t.Fatalf("toolchain %s: %v", want, err)
		}
		out = append(out, tc)
	}
	return out
}

// Start runs a private daemon and stops it (asserting a clean stop) when the test ends.
func Start(t testing.TB, tc *toolchain.Toolchain) *daemon.Daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := daemon.Start(ctx, tc, daemon.Options{})
	if err != nil {
		t.Fatalf("start containerd %s: %v", tc.Name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd %s log tail:\n%s", tc.Name, d.LogTail(40))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := d.Stop(ctx); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
		if err := Leftovers(d); err != nil {
			t.Errorf("after stop: %v", err)
		}
	})
	return d
}

// Client connects to d with the namespace as default; closed at test end.
func Client(t testing.TB, d *daemon.Daemon, ns string) *client.Client {
	t.Helper()
	c, err := d.Client(client.WithDefaultNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Leftovers reports anything a stopped daemon left: its process, shims
// naming its socket, mounts under its dir, the dir itself.
func Leftovers(d *daemon.Daemon) error {
	var errs []error
	if d.Pid() != 0 {
		errs = append(errs, fmt.Errorf("containerd pid %d still running", d.Pid()))
	}
	procs, err := procfs.Processes()
	if err != nil {
		return err
	}
	for _, s := range procfs.Shims(procs) {
		if s.Address == d.Address() {
			errs = append(errs, fmt.Errorf("shim pid %d still running: %s", s.Pid, s.Cmdline()))
		}
	}
	ms, err := procfs.MountsUnder(d.Dir())
	if err != nil {
		return err
	}
	for _, m := range ms {
		errs = append(errs, fmt.Errorf("still mounted: %s", m.Point))
	}
	if _, err := os.Stat(d.Dir()); !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("dir %s still exists (%v)", d.Dir(), err))
	}
	return errors.Join(errs...)
}

// Sleeper builds testdata/sleeper statically into a temp dir.
func Sleeper(t testing.TB) string {
	t.Helper()
	root, err := gobuild.ModuleRoot(context.Background())
	if err != nil {
		t.Fatalf("build sleeper: %v", err)
	}
	out := filepath.Join(t.TempDir(), "sleeper")
	if err := gobuild.StaticBinary(context.Background(), root, "./harness/daemon/daemontest/testdata/sleeper", out); err != nil {
		t.Fatalf("build sleeper (needs Go on PATH): %v", err)
	}
	return out
}

// RootfsSnapshot prepares an active overlayfs snapshot holding only /sleeper.
// Without a lease in ctx the garbage collector may remove it at any time.
func RootfsSnapshot(ctx context.Context, c *client.Client, key, sleeper string) error {
	mounts, err := c.SnapshotService("overlayfs").Prepare(ctx, key, "")
	if err != nil {
		return fmt.Errorf("prepare snapshot %s: %w", key, err)
	}
	return mount.WithTempMount(ctx, mounts, func(root string) error {
		b, err := os.ReadFile(sleeper)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, "sleeper"), b, 0o755)
	})
}

// RunSleeper creates container id (rootfs snapshot id) and starts its task.
func RunSleeper(ctx context.Context, c *client.Client, id, sleeper string) (_ client.Container, _ client.Task, err error) {
	// The lease keeps the unreferenced snapshot from the GC until the container holds it.
	ctx, done, err := c.WithLease(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("lease: %w", err)
	}
	defer func() {
		if derr := done(context.WithoutCancel(ctx)); derr != nil && err == nil {
			err = fmt.Errorf("release lease: %w", derr)
		}
	}()
	if err := RootfsSnapshot(ctx, c, id, sleeper); err != nil {
		return nil, nil, err
	}
	ctr, err := c.NewContainer(ctx, id,
		client.WithSnapshotter("overlayfs"),
		client.WithSnapshot(id),
		client.WithNewSpec(oci.WithProcessArgs("/sleeper"), oci.WithHostNamespace("network")),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("create container %s: %w", id, err)
	}
	task, err := ctr.NewTask(ctx, cio.NullIO)
	if err != nil {
		return ctr, nil, fmt.Errorf("create task %s: %w", id, err)
	}
	if err := task.Start(ctx); err != nil {
		return ctr, task, fmt.Errorf("start task %s: %w", id, err)
	}
	return ctr, task, nil
}

// Namespace makes a namespace unique to this test process: runc's state
// (/run/containerd/runc/<ns>/<id>) and cgroups (/<ns>/<id>) are per host, so
// two test runs at once must not share a namespace.
func Namespace(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, os.Getpid())
}
