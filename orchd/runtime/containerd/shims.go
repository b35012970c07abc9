package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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

// ReapOrphanShims ends shims the daemon no longer tracks. containerd 1.6 can
// lose track of a shim when the client dies while the task is being created:
// the shim keeps serving a half-created runc container that no API call
// reaches. Each orphan gets the shim's own cleanup (`<shim> ... delete`, run
// in its bundle dir, as containerd runs it for a dead shim: runc delete
// --force and rootfs unmount), then SIGKILL, then its bundle dir is removed.
// Callers first remove every task they can through the API.
func ReapOrphanShims(ctx context.Context, socket, ns string, want func(id string) bool) error {
	var errs []error
	for _, pid := range shimPids(socket, ns, want) {
		if err := reapShim(ctx, pid, socket, ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func reapShim(ctx context.Context, pid int, socket, ns string) error {
	proc := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return nil // gone already
	}
	argv := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
	id := flag(argv, "-id")
	exe, err1 := os.Readlink(proc + "/exe")
	bundle, err2 := os.Readlink(proc + "/cwd")
	if err1 == nil && err2 == nil && id != "" {
		args := []string{"-namespace", ns, "-address", strings.TrimPrefix(socket, "unix://"), "-id", id, "-bundle", bundle}
		if pb := flag(argv, "-publish-binary"); pb != "" {
			args = append(args, "-publish-binary", pb)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cmd := exec.CommandContext(cctx, exe, append(args, "delete")...)
		cmd.Dir = bundle
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			slog.Debug("orphan shim delete", "pid", pid, "id", id, "err", err, "output", string(out))
		}
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill orphan shim %d (%s): %w", pid, id, err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		if st, err := os.ReadFile(proc + "/stat"); err == nil && bytes.Contains(st, []byte(") Z ")) {
			break // a zombie: its parent (init) reaps it
		}
	}
	// The daemon would remove the bundle of a dead shim; only touch a path
	// that is a v2 task bundle of this namespace and id.
	if err2 == nil && id != "" && filepath.Base(bundle) == id && filepath.Base(filepath.Dir(bundle)) == ns &&
		filepath.Base(filepath.Dir(filepath.Dir(bundle))) == "io.containerd.runtime.v2.task" {
		if err := os.RemoveAll(bundle); err != nil {
			return fmt.Errorf("remove bundle of orphan shim %s: %w", id, err)
		}
	}
	return nil
}

// shimPids is shims as pids.
func shimPids(socket, ns string, want func(string) bool) []int {
	var out []int
	for _, s := range shims(socket, ns, want) {
		pid, _, _ := strings.Cut(s, " ")
		if n, err := strconv.Atoi(pid); err == nil {
			out = append(out, n)
		}
	}
	return out
}
