package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orchd/orchd/orchd/procfs"
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
			var names []string
			for _, sh := range left {
				names = append(names, strconv.Itoa(sh.Pid)+" "+sh.ID)
			}
			return fmt.Errorf("shims still running after %s: %s", shimWait, strings.Join(names, ", "))
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}

// shims lists the shim processes for socket and ns whose -id want selects.
func shims(socket, ns string, want func(string) bool) []procfs.Shim {
	procs, _ := procfs.Processes()
	var out []procfs.Shim
	for _, sh := range procfs.Shims(procs) {
		if sh.Namespace == ns && sh.Address == procfs.TrimUnix(socket) && sh.ID != "" && want(sh.ID) {
			out = append(out, sh)
		}
	}
	return out
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
	argv := procfs.Argv(pid)
	if argv == nil {
		return nil // gone already
	}
	id := procfs.Flag(argv, "id")
	exe, err1 := os.Readlink(proc + "/exe")
	bundle, err2 := os.Readlink(proc + "/cwd")
	if err1 == nil && err2 == nil && id != "" {
		args := []string{"-namespace", ns, "-address", strings.TrimPrefix(socket, "unix://"), "-id", id, "-bundle", bundle}
		if pb := procfs.Flag(argv, "publish-binary"); pb != "" {
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
	// Gone, or a zombie its parent (init) reaps.
	_ = procfs.WaitGone(ctx, []int{pid}, 10*time.Second)
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
	for _, sh := range shims(socket, ns, want) {
		out = append(out, sh.Pid)
	}
	return out
}
