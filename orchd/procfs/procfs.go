// Package procfs is the one reader of /proc: processes (argv, parent, alive),
// containerd shims, mounts; and the cleanup built on them (kill a tree, wait
// for processes to go, unmount). orchd's walks and leaves and the harness's
// leak inspector share it.
package procfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Proc is one process.
type Proc struct {
	Pid  int
	PPid int
	Argv []string
	// State is the state letter of /proc/PID/stat (R, S, D, Z, ...); 0 when
	// the process went before its stat was read.
	State byte
}

// Cmdline is argv joined with spaces (for reports).
func (p Proc) Cmdline() string { return strings.Join(p.Argv, " ") }

// Live reports whether the process was neither a zombie nor dead when scanned.
func (p Proc) Live() bool { return live(p.State) }

func live(state byte) bool { return state != 0 && state != 'Z' && state != 'X' }

// Processes lists every readable process; ones that vanish mid-scan are skipped.
func Processes() ([]Proc, error) { return Scan(nil) }

// Scan lists the processes whose raw cmdline (argv joined by NULs) keep
// accepts; nil keeps all. The filter sees the bytes as read, so a scan for a
// few processes parses and stats only those.
func Scan(keep func(cmdline []byte) bool) ([]Proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(raw) == 0 {
			continue // gone, or a kernel thread
		}
		if keep != nil && !keep(raw) {
			continue
		}
		ppid, state := stat(pid)
		out = append(out, Proc{Pid: pid, PPid: ppid, Argv: splitArgv(raw), State: state})
	}
	return out, nil
}

// Argv returns a process's argv; nil when it is gone (or a kernel thread).
func Argv(pid int) []string {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(raw) == 0 {
		return nil
	}
	return splitArgv(raw)
}

func splitArgv(raw []byte) []string {
	return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
}

// Parent is pid's parent process id, 0 when pid is gone.
func Parent(pid int) int {
	ppid, _ := stat(pid)
	return ppid
}

// stat reads a process's parent and state letter from /proc/PID/stat (0, 0
// when it is gone).
func stat(pid int) (ppid int, state byte) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// comm may contain spaces and parens: the fields after the last ')' are
	// fixed: " STATE PPID ...".
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 || i+2 >= len(raw) {
		return 0, 0
	}
	state = raw[i+2]
	rest := raw[min(i+3, len(raw)):]
	rest = bytes.TrimLeft(rest, " ")
	if j := bytes.IndexByte(rest, ' '); j > 0 {
		ppid, _ = strconv.Atoi(string(rest[:j]))
	}
	return ppid, state
}

// Environ returns a process's environment (nil if unreadable).
func Environ(pid int) []string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || len(raw) == 0 {
		return nil
	}
	return strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
}

// Flag returns the value of -name/--name (as "-name v" or "-name=v") in argv.
func Flag(argv []string, name string) string {
	for i, a := range argv {
		a = strings.TrimLeft(a, "-")
		if a == name && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// Shim describes a containerd shim process.
type Shim struct {
	Proc
	Address, Namespace, ID string
}

// Shims lists containerd-shim* processes with their -address/-namespace/-id.
func Shims(procs []Proc) []Shim {
	var out []Shim
	for _, p := range procs {
		if !strings.HasPrefix(filepath.Base(p.Argv[0]), "containerd-shim") {
			continue
		}
		out = append(out, Shim{
			Proc:      p,
			Address:   TrimUnix(Flag(p.Argv, "address")),
			Namespace: Flag(p.Argv, "namespace"),
			ID:        Flag(p.Argv, "id"),
		})
	}
	return out
}

// TrimUnix drops a unix:// scheme so addresses compare as paths.
func TrimUnix(a string) string { return strings.TrimPrefix(a, "unix://") }

// Descendants returns every process below pid (children first-level and deeper).
func Descendants(procs []Proc, pid int) []int {
	kids := map[int][]int{}
	for _, p := range procs {
		kids[p.PPid] = append(kids[p.PPid], p.Pid)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, k := range kids[n] {
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out
}

// KillTree SIGKILLs pid and all its descendants; the parent goes first so it
// cannot fork replacements or restart children.
func KillTree(procs []Proc, pid int) {
	desc := Descendants(procs, pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for _, d := range desc {
		_ = syscall.Kill(d, syscall.SIGKILL)
	}
}

// Alive reports whether pid exists and is neither a zombie nor dead.
func Alive(pid int) bool {
	_, state := stat(pid)
	return live(state)
}

// WaitGone waits until no pid is Alive; it fails naming the survivors when
// timeout passes or ctx ends first. Each process is watched through a pidfd
// (readable once it exits), so the wait costs no CPU; a pid whose pidfd
// cannot be opened (a kernel before 5.3) is polled through /proc.
func WaitGone(ctx context.Context, pids []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var fds []unix.PollFd
	fdPid := map[int32]int{}
	var polled []int
	defer func() {
		for _, f := range fds {
			unix.Close(int(f.Fd))
		}
	}()
	for _, p := range pids {
		if !Alive(p) {
			continue
		}
		fd, err := pidfdOpen(p)
		switch {
		case err == nil:
			fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
			fdPid[int32(fd)] = p
		case errors.Is(err, unix.ESRCH):
		default:
			polled = append(polled, p)
		}
	}
	for {
		// A pidfd is readable once its process exited (zombies included,
		// as for Alive); the polled pids are read from /proc.
		polled = slices.DeleteFunc(polled, func(p int) bool { return !Alive(p) })
		fds = slices.DeleteFunc(fds, func(f unix.PollFd) bool {
			if f.Revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
				unix.Close(int(f.Fd))
				return true
			}
			return false
		})
		if len(fds) == 0 && len(polled) == 0 {
			return nil
		}
		alive := slices.Clone(polled)
		for _, f := range fds {
			alive = append(alive, fdPid[f.Fd])
		}
		slices.Sort(alive)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("processes %v still alive: %w", alive, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("processes %v still alive after %s", alive, timeout)
		}
		// Wake at least every 100 ms for ctx, every 20 ms while polling /proc.
		wait := min(left, 100*time.Millisecond)
		if len(polled) > 0 {
			wait = min(wait, 20*time.Millisecond)
		}
		if len(fds) == 0 {
			time.Sleep(wait) // /proc poll interval; the deadline bounds the wait
			continue
		}
		for i := range fds {
			fds[i].Revents = 0
		}
		if _, err := unix.Poll(fds, int(wait.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for processes %v: %w", alive, err)
		}
	}
}

// Mount is one line of mountinfo.
type Mount struct {
	Point  string
	FSType string
	Source string
	// Root is the mounted dir within its file system (a bind mount's source).
	Root string
	// SuperOptions are the file system's options (overlay's upperdir=...).
	SuperOptions string
}

// Mounts parses /proc/self/mountinfo.
func Mounts() ([]Mount, error) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	var out []Mount
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+2 >= len(f) {
			continue
		}
		m := Mount{Point: unescape(f[4]), FSType: f[sep+1], Source: unescape(f[sep+2]), Root: unescape(f[3])}
		if sep+3 < len(f) {
			m.SuperOptions = unescape(f[sep+3])
		}
		out = append(out, m)
	}
	return out, nil
}

// unescape decodes mountinfo's octal escapes (\040 for space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Under reports whether path is dir or inside it.
func Under(path, dir string) bool {
	if dir == "" {
		return false
	}
	dir = filepath.Clean(dir)
	return path == dir || strings.HasPrefix(path, dir+"/")
}

// MountsUnder lists mount points inside any of dirs, deepest first.
func MountsUnder(dirs ...string) ([]Mount, error) {
	all, err := Mounts()
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, m := range all {
		for _, d := range dirs {
			if Under(m.Point, d) {
				out = append(out, m)
				break
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return strings.Count(out[i].Point, "/") > strings.Count(out[j].Point, "/")
	})
	return out, nil
}

// UnmountUnder unmounts everything inside dirs, deepest first, falling back
// to a lazy detach when a mount is busy.
func UnmountUnder(dirs ...string) error {
	var errs []error
	// Stacked mounts on one point need several passes; bound them.
	for pass := 0; pass < 8; pass++ {
		ms, err := MountsUnder(dirs...)
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, m := range ms {
			if err := unix.Unmount(m.Point, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				if err2 := unix.Unmount(m.Point, MntDetach); err2 != nil && !errors.Is(err2, unix.EINVAL) {
					errs = append(errs, fmt.Errorf("unmount %s: %w", m.Point, err2))
				}
			}
		}
	}
	if ms, err := MountsUnder(dirs...); err == nil && len(ms) > 0 {
		errs = append(errs, fmt.Errorf("still mounted: %s", ms[0].Point))
	}
	return errors.Join(errs...)
}
