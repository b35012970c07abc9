// Package faults kills what orchd depends on (containerd, the containerd-run
// leaf, the supervisor), fills and freezes its state dir, and fells at awkward
// moments, and proves each time that orchd recovers or reports the failure,
// never duplicates a container, and leaves nothing behind.
package faults

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/settings"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("faults", framework.Options{})

// victim is the private containerd this test process owns and may SIGKILL.
// It is set in TestFaults before any spec runs and only read afterwards.
var victim *daemon.Daemon

// TestFaults starts a containerd of its own before the framework bootstraps,
// and hands it to the framework as an external daemon: the fault specs kill
// and restart it, which a shared daemon must never suffer.
func TestFaults(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the faults suite runs containerd and kills it: run it as root, e.g. sudo -E go test ./suites/faults/")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: os.Getenv(framework.EnvToolchain), Progress: os.Stderr})
	cancel()
	if err != nil {
		t.Fatalf("no containerd toolchain: %v\ninstall: %s  (containerd 1.6 + runc)\nor stage the pinned 2.x: go run ./cmd/orchd-harness stage --all", err, toolchain.AptInstall)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	d, err := daemon.Start(ctx, tc, daemon.Options{})
	cancel()
	if err != nil {
		t.Fatalf("start a private containerd (%s) for the faults suite: %v", tc.Name, err)
	}
	victim = d
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// A spec may have left it killed: bring it back so Stop can clean up through the API.
		if d.Pid() == 0 {
			if err := d.Restart(ctx); err != nil {
				t.Logf("restart containerd before stop: %v", err)
			}
		}
		if err := d.Stop(ctx); err != nil {
			t.Errorf("stop the private containerd: %v", err)
		}
	})
	set := settings.FromDaemon(d)
	// The specs restart the daemon: its pid changes, so none is handed over.
	set.Pid, set.Toolchain = 0, tc.Name
	for _, kv := range set.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	framework.RunSuite(t, "faults")
}
