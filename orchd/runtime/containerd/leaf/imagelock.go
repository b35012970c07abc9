package leaf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/contract"
)

// lockImages serializes image import and unpack among the leaves of one grove.
// Several services starting at once from one image otherwise race inside
// containerd's unpacker (a layer applied twice into the same snapshot key
// fails with "apply layer error ... Lchown ... no such file or directory").
// The first leaf imports and unpacks; the others then find it unpacked. The
// lock lives next to the grove's run files (<state>/run/.<ns>.image.lock), so
// fell removes it with them.
func lockImages(ctx context.Context, stateDir, namespace string) (unlock func(), err error) {
	if stateDir == "" {
		return func() {}, nil
	}
	path := contract.Layout{StateDir: stateDir}.ImageLock(namespace)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("image lock: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image lock: %w", err)
	}
	// flock cannot be cancelled; poll the non-blocking form so a stop during
	// the wait is honored.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("image lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for image lock %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}
