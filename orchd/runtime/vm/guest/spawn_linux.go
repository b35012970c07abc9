package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// setupCgroup creates CgroupDir, writes the limits into it and returns its fd
// (the command is cloned straight into it: CLONE_INTO_CGROUP, no window in
// which it runs unlimited). warn reports a limit this kernel cannot apply.
func setupCgroup(l Limits, warn func(string)) (int, error) {
	if err := os.Mkdir(CgroupDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return -1, fmt.Errorf("cgroup %s: %w", CgroupDir, err)
	}
	write := func(directive, file, v string) error {
		if err := os.WriteFile(filepath.Join(CgroupDir, file), []byte(v), 0); err != nil {
			return fmt.Errorf("%s: write %q to %s: %w", directive, v, filepath.Join(CgroupDir, file), err)
		}
		return nil
	}
	var errs []error
	if l.MemoryMax > 0 {
		errs = append(errs, write("MEMORY", "memory.max", strconv.FormatInt(l.MemoryMax, 10)))
	}
	if l.CPUMax != "" {
		errs = append(errs, write("CPUS/CPU_QUOTA", "cpu.max", l.CPUMax))
	}
	if l.PidsMax > 0 {
		errs = append(errs, write("TASKS_MAX", "pids.max", strconv.FormatInt(l.PidsMax, 10)))
	}
	if l.IOWeight > 0 {
		// io.weight exists with the iocost controller (CONFIG_BLK_CGROUP_IOCOST);
		// without it the weight cannot be applied, which must be said aloud.
		if _, err := os.Stat(filepath.Join(CgroupDir, "io.weight")); err != nil {
			warn(fmt.Sprintf("IO_WEIGHT %d not applied: the guest kernel has no io.weight in %s (build it with CONFIG_BLK_CGROUP_IOCOST)", l.IOWeight, CgroupDir))
		} else {
			errs = append(errs, write("IO_WEIGHT", "io.weight", "default "+strconv.Itoa(l.IOWeight)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return -1, err
	}
	fd, err := unix.Open(CgroupDir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cgroup %s: %w", CgroupDir, err)
	}
	return fd, nil
}

// spawner starts the service command and its HEALTHCHECK commands with the
// service's env, user, workdir, cgroup and rlimits, and hands each one's exit
// status to whoever waits for it (PID 1 reaps every process of the guest).
type spawner struct {
	cfg      *Config
	cgroupFD int // -1: no cgroup
	devnull  *os.File
	stderr   *os.File // the command's stderr

	mu      sync.Mutex
	waiters map[int]chan int
}

func newSpawner(cfg *Config, cgroupFD int, stderr *os.File) (*spawner, error) {
	devnull, err := os.Open("/dev/null")
	if err != nil {
		return nil, err
	}
	return &spawner{cfg: cfg, cgroupFD: cgroupFD, devnull: devnull, stderr: stderr, waiters: map[int]chan int{}}, nil
}

// start forks argv; its exit code arrives on the returned channel once reaped.
// stdout goes to the console and stderr to the stderr port, unless quiet.
func (s *spawner) start(argv []string, quiet bool) (int, <-chan int, error) {
	argv0, err := lookPath(argv[0], s.cfg.Env)
	if err != nil {
		return 0, nil, err
	}
	files := []uintptr{s.devnull.Fd(), 1, s.stderr.Fd()}
	if quiet {
		files = []uintptr{s.devnull.Fd(), s.devnull.Fd(), s.devnull.Fd()}
	}
	attr := &syscall.ProcAttr{
		Dir:   s.cfg.Dir,
		Env:   s.cfg.Env,
		Files: files,
		Sys: &syscall.SysProcAttr{
			Setsid:      true,
			Credential:  &syscall.Credential{Uid: s.cfg.UID, Gid: s.cfg.GID, Groups: s.cfg.Groups},
			UseCgroupFD: s.cgroupFD >= 0,
			CgroupFD:    s.cgroupFD,
		},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Rlimits are inherited at fork: set them on the init just around the
	// fork (the lock keeps two forks from interleaving), then restore them.
	restore, err := setRlimits(s.cfg.Limits.Rlimits)
	if err != nil {
		return 0, nil, err
	}
	pid, err := syscall.ForkExec(argv0, argv, attr)
	if rerr := restore(); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		if errors.Is(err, syscall.EMFILE) {
			for _, rl := range s.cfg.Limits.Rlimits {
				if rl.Resource == unix.RLIMIT_NOFILE {
					return 0, nil, fmt.Errorf("start %s: LIMIT_NOFILE %d is too low to start it: %w", argv0, rl.Value, err)
				}
			}
		}
		return 0, nil, fmt.Errorf("start %s: %w", argv0, err)
	}
	ch := make(chan int, 1)
	s.waiters[pid] = ch
	return pid, ch, nil
}

// reap collects every exited child and delivers the exit codes of the ones
// started by start.
func (s *spawner) reap() {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || got <= 0 {
			return
		}
		code := -1
		switch {
		case ws.Exited():
			code = ws.ExitStatus()
		case ws.Signaled():
			code = 128 + int(ws.Signal())
		}
		s.mu.Lock()
		if ch, ok := s.waiters[got]; ok {
			ch <- code
			delete(s.waiters, got)
		}
		s.mu.Unlock()
	}
}

// setRlimits applies rls to this process and returns how to undo it.
// syscall.Setrlimit also stops Go from restoring its startup RLIMIT_NOFILE
// in the child.
func setRlimits(rls []Rlimit) (func() error, error) {
	var old []Rlimit
	var saved []syscall.Rlimit
	restore := func() error {
		var errs []error
		for i := len(old) - 1; i >= 0; i-- {
			errs = append(errs, syscall.Setrlimit(old[i].Resource, &saved[i]))
		}
		return errors.Join(errs...)
	}
	for _, rl := range rls {
		var cur syscall.Rlimit
		if err := syscall.Getrlimit(rl.Resource, &cur); err != nil {
			_ = restore()
			return nil, fmt.Errorf("%s: getrlimit: %w", rl.Directive, err)
		}
		if err := syscall.Setrlimit(rl.Resource, &syscall.Rlimit{Cur: rl.Value, Max: rl.Value}); err != nil {
			_ = restore()
			return nil, fmt.Errorf("%s %d: setrlimit: %w", rl.Directive, rl.Value, err)
		}
		old, saved = append(old, rl), append(saved, cur)
	}
	return restore, nil
}
