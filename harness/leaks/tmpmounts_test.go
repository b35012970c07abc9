package leaks_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/orchd/orchd/harness/daemon/daemontest"
	"github.com/orchd/orchd/harness/leaks"
)

// TestTmpMountBelongsToItsSnapshotsNamespace mounts one namespace's active
// snapshot under <root>/tmpmounts, as containerd does while it unpacks a
// layer: the other namespace's check ignores it, its own reports it.
func TestTmpMountBelongsToItsSnapshotsNamespace(t *testing.T) {
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			d := daemontest.Start(t, tc)
			unpacking, checking := daemontest.Namespace("unpacking"), daemontest.Namespace("checking")
			c := daemontest.Client(t, d, unpacking)
			// Unpacking holds a lease, which keeps the snapshot from the
			// garbage collection the inspector runs first.
			uctx, done, err := c.WithLease(namespaces.WithNamespace(ctx, unpacking))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = done(context.WithoutCancel(uctx)) })
			sn := c.SnapshotService("overlayfs")
			ms, err := sn.Prepare(uctx, "extract-1", "")
			if err != nil {
				t.Fatal(err)
			}
			point := filepath.Join(d.Root(), "tmpmounts", "containerd-mount-test")
			if err := os.MkdirAll(point, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := mount.All(ms, point); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = mount.UnmountAll(point, 0)
				_ = sn.Remove(uctx, "extract-1")
			})
			// The checking namespace needs to exist to be inspected at all.
			if err := c.NamespaceService().Create(ctx, checking, nil); err != nil {
				t.Fatal(err)
			}

			other, err := leaks.Inspect(ctx, target(d, checking))
			if err != nil {
				t.Fatal(err)
			}
			if len(other.Mounts) != 0 {
				t.Errorf("namespace %s reports another namespace's transient mount:\n%s", checking, other)
			}
			own, err := leaks.Inspect(ctx, target(d, unpacking))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(own.String(), "mount "+point) {
				t.Errorf("namespace %s does not report its own mount %s:\n%s", unpacking, point, own)
			}
		})
	}
}
