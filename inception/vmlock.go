package inception

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// vmLockPath is the host-wide lock one inception VM holds while it runs.
// Two qemu guests under TCG on a small host starve each other's vCPUs until
// specs miss their deadlines (seen with `go test ./...`, which runs the
// inception and platforms packages side by side), so VMs take turns.
func vmLockPath() string {
	return filepath.Join(os.TempDir(), "orchd-harness-vm.lock")
}

// lockVM waits (bounded by ctx) for the host-wide VM lock and returns its
// release. It polls a non-blocking flock so a cancelled run stops waiting.
func lockVM(ctx context.Context, progress func(string, ...any)) (func(), error) {
	path := vmLockPath()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("vm lock %s: %w", path, err)
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	waited := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("vm lock %s: %w", path, err)
		}
		if !waited {
			progress("waiting for another inception VM on this host to end (lock %s)", path)
			waited = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for the vm lock %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}
