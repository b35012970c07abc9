package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// shimWait bounds how long Sweep waits for the daemon's own cleanup of a shim.
const shimWait = 15 * time.Second

// WaitShims waits until no shim of daemon socket serves a container of
// namespace ns that want selects. When a leaf dies while its task is being
// created, containerd cleans the half-made shim up asynchronously (a
// `containerd-shim-runc-v2 ... delete` run, then the bundle dir); fell must
// not return before that is done.
func WaitShims(ctx context.Context, socket, ns string, want func(id string) bool) error {
	ctx, cancel := context.WithTimeout(ctx, shimWait)
	defer cancel()
	for {
		left := shims(socket, ns, want)
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("shims still running after %s: %s", shimWait, strings.Join(left, ", "))
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}

// shims lists "pid id" of shim processes for socket and ns whose -id want selects.
func shims(socket, ns string, want func(string) bool) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []string
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		if !strings.HasPrefix(filepath.Base(argv[0]), "containerd-shim") {
			continue
		}
		if flag(argv, "-namespace") != ns || !sameSocket(flag(argv, "-address"), socket) {
			continue
		}
		if id := flag(argv, "-id"); id != "" && want(id) {
			out = append(out, filepath.Base(d)+" "+id)
		}
	}
	return out
}

func flag(argv []string, name string) string {
	if i := slices.Index(argv, name); i >= 0 && i+1 < len(argv) {
		return argv[i+1]
	}
	return ""
}

func sameSocket(a, b string) bool {
	return strings.TrimPrefix(a, "unix://") == strings.TrimPrefix(b, "unix://")
}
