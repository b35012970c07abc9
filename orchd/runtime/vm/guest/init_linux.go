package guest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const newRoot = "/newroot"

// proc is the init's state.
type proc struct {
	cfg   *Config
	debug bool
	ctl   *os.File
	// out queues lines to the host; a writer goroutine drains it so a slow
	// host reader never holds up reaping.
	out     chan string
	outDone chan struct{}
	outMu   sync.Mutex // guards out against a send after finish closed it
	closed  bool
}

// openCtl starts the writer of the control port.
func (p *proc) openCtl(ctl *os.File) {
	p.ctl = ctl
	p.out = make(chan string, 256)
	p.outDone = make(chan struct{})
	go func() {
		defer close(p.outDone)
		for line := range p.out {
			_, _ = io.WriteString(ctl, line+"\n")
		}
	}()
}

// send queues one line to the host.
func (p *proc) send(line string) {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	if p.out != nil && !p.closed {
		p.out <- line
	}
}

// warn reports a limit that could not be applied: on the console (the
// service's log) and to the host, which logs it too.
func (p *proc) warn(msg string) {
	fmt.Fprintf(os.Stderr, "orchd-init: warning: %s\n", msg)
	p.send("warn " + msg)
}

// Main is the init. It only returns (with an error) when not PID 1.
func Main() error {
	if os.Getpid() != 1 {
		return errors.New("vm-init runs as PID 1 inside a vm service's VM; it is started by vm-run")
	}
	unix.Umask(0)
	p := &proc{}
	cfg, err := Load(ConfigPath)
	if err != nil {
		p.fail(err)
	}
	p.cfg, p.debug = cfg, cfg.Debug
	// Modules load from the initramfs, so they need not be copied.
	p.step("loading %d modules", len(cfg.Modules))
	for _, m := range cfg.Modules {
		if err := loadModule(m); err != nil {
			p.fail(err)
		}
	}
	p.step("copying the initramfs into a tmpfs root")
	if err := switchRoot(); err != nil {
		p.fail(fmt.Errorf("switch root: %w", err))
	}
	p.finish(p.run())
	return nil
}

func (p *proc) step(format string, a ...any) {
	if !p.debug {
		return
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	fmt.Fprintf(os.Stderr, "orchd-init: [%d.%03d] %s\n", ts.Sec, ts.Nsec/1e6, fmt.Sprintf(format, a...))
}

// fail reports an init failure and powers off.
func (p *proc) fail(err error) {
	fmt.Fprintf(os.Stderr, "orchd-init: %v\n", err)
	p.finish(ExitInitFailed)
}

func (p *proc) finish(code int) {
	p.outMu.Lock()
	closeOut := p.out != nil && !p.closed
	if closeOut {
		p.closed = true
		close(p.out)
	}
	p.outMu.Unlock()
	if closeOut {
		select {
		case <-p.outDone:
		case <-time.After(2 * time.Second):
		}
	}
	if p.ctl != nil {
		fmt.Fprintf(p.ctl, "exit %d\n", code)
		_ = p.ctl.Sync()
	}
	fmt.Fprintf(os.Stdout, "%s %d\n", ExitMarker, code)
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	// Reboot only returns on error; PID 1 exiting panics the kernel, which
	// (panic=-1, qemu -no-reboot) also ends the VM.
	os.Exit(code)
}

// switchRoot copies the initramfs (except orchd's own files, which stay in the
// old root this process runs from) into a tmpfs and makes that the root:
// runc's pivot_root cannot leave the initial rootfs.
func switchRoot() error {
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs: %w", err)
	}
	err := filepath.WalkDir("/", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch p {
		case "/":
			return nil
		case newRoot, Dir:
			return filepath.SkipDir
		}
		return moveEntry(p, filepath.Join(newRoot, p))
	})
	if err != nil {
		return fmt.Errorf("copy rootfs: %w", err)
	}
	if err := os.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return os.Chdir("/")
}

// moveEntry copies one entry and deletes the source file, so RAM holds each
// file's bytes only once at a time.
func moveEntry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	perm := st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		_ = os.Remove(src)
		return unix.Lchown(dst, int(st.Uid), int(st.Gid))
	case unix.S_IFREG:
		if err := copyFile(src, dst); err != nil {
			return err
		}
		_ = os.Remove(src)
	default:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return unix.Chmod(dst, perm) // after chown, which clears setuid bits
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

type mountSpec struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
	mode                   os.FileMode
}

func (p *proc) run() int {
	cfg := p.cfg
	p.step("root switched; mounting")
	nosuid := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	mounts := []mountSpec{
		{"proc", "/proc", "proc", nosuid, "", 0o555},
		{"sysfs", "/sys", "sysfs", nosuid, "", 0o555},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", 0o755},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5", 0o755},
		{"shm", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", 0o1777},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", 0o755},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", 0o1777},
	}
	if cfg.Cgroup2 {
		mounts = append(mounts, mountSpec{"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuid, "", 0o555})
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, m.mode); err != nil {
			p.fail(fmt.Errorf("mkdir %s: %w", m.target, err))
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil {
			p.fail(fmt.Errorf("mount %s on %s: %w", m.fstype, m.target, err))
		}
	}
	_ = os.Symlink("pts/ptmx", "/dev/ptmx.tmp")
	_ = os.Rename("/dev/ptmx.tmp", "/dev/ptmx")
	for _, l := range [][2]string{{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"}, {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}} {
		_ = os.Symlink(l[0], l[1])
	}
	rawConsole()
	if cfg.Cgroup2 {
		// runc enables controllers along the path too; doing it here makes the
		// root's children (containerd's cgroups) limitable from the start.
		_ = os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+cpu +cpuset +io +memory +pids"), 0)
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			p.fail(fmt.Errorf("sethostname: %w", err))
		}
	}
	if err := ifUp("lo", "", ""); err != nil {
		p.fail(err)
	}
	if n := cfg.Network; n != nil {
		if err := ifUp(n.Interface, n.Address, n.Netmask); err != nil {
			p.fail(err)
		}
	}
	writeEtc(cfg)
	p.step("mounting %d volumes", len(cfg.Volumes))
	for _, v := range cfg.Volumes {
		if err := os.MkdirAll(v.Destination, 0o755); err != nil {
			p.fail(fmt.Errorf("volume %s: %w", v.Destination, err))
		}
		var flags uintptr
		if v.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		if err := unix.Mount(v.Tag, v.Destination, "9p", flags, "trans=virtio,version=9p2000.L,msize=262144,cache=mmap"); err != nil {
			p.fail(fmt.Errorf("mount volume %s at %s: %w", v.Tag, v.Destination, err))
		}
	}
	if cfg.ExecInit {
		p.fail(p.execInit())
	}
	ctl, err := openPort(ControlPort, 5*time.Second)
	if err != nil {
		p.fail(err)
	}
	p.openCtl(ctl)
	// Without the stderr port (an older host), stderr stays on the console.
	stderr := os.Stderr
	if f, err := openPort(StderrPort, time.Second); err == nil {
		stderr = f
	}
	cgroupFD := -1
	if cfg.Cgroup2 {
		if cgroupFD, err = setupCgroup(cfg.Limits, p.warn); err != nil {
			p.fail(err)
		}
	} else if cfg.Limits.CPUMax != "" || cfg.Limits.PidsMax > 0 || cfg.Limits.MemoryMax > 0 || cfg.Limits.IOWeight > 0 {
		p.fail(errors.New("cgroup limits need the cgroup2 mount (guest config cgroup2: true)"))
	}
	sp, err := newSpawner(cfg, cgroupFD, stderr)
	if err != nil {
		p.fail(err)
	}
	p.step("starting %v", cfg.Argv)
	code, err := p.supervise(sp)
	if err != nil {
		p.fail(err)
	}
	for i := len(cfg.Volumes) - 1; i >= 0; i-- {
		unix.Sync()
		_ = unix.Unmount(cfg.Volumes[i].Destination, 0)
	}
	return code
}

// rawConsole turns off output post-processing (\n -> \r\n) on the console so
// the service log holds the process's bytes as written.
func rawConsole() {
	for _, fd := range []int{0, 1, 2} {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			continue
		}
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}
}

func loadModule(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("module %s: %w", p, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", filepath.Base(p), err)
	}
	return nil
}

func ifUp(name, addr, mask string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if addr != "" {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(net.ParseIP(addr).To4()); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFADDR, ifr); err != nil {
			return fmt.Errorf("%s address %s: %w", name, addr, err)
		}
		if err := ifr.SetInet4Addr(net.ParseIP(mask).To4()); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCSIFNETMASK, ifr); err != nil {
			return fmt.Errorf("%s netmask %s: %w", name, mask, err)
		}
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s up: %w", name, err)
	}
	return nil
}

// writeEtc gives the guest the files every container runtime provides.
func writeEtc(cfg *Config) {
	_ = os.MkdirAll("/etc", 0o755)
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if cfg.Hostname != "" {
		hosts += "127.0.1.1\t" + cfg.Hostname + "\n"
	}
	_ = os.WriteFile("/etc/hosts", []byte(hosts), 0o644)
	if cfg.Hostname != "" {
		_ = os.WriteFile("/etc/hostname", []byte(cfg.Hostname+"\n"), 0o644)
	}
	dns := "nameserver " + UserNet().DNS + "\n"
	if cfg.Network != nil && cfg.Network.DNS != "" {
		dns = "nameserver " + cfg.Network.DNS + "\n"
	}
	_ = os.Remove("/etc/resolv.conf") // may be a dangling symlink in the image
	_ = os.WriteFile("/etc/resolv.conf", []byte(dns), 0o644)
}

// openPort finds the virtio-serial port named name.
func openPort(name string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil || strings.TrimSpace(string(b)) != name {
				continue
			}
			dev := "/dev/" + filepath.Base(filepath.Dir(n))
			f, err := os.OpenFile(dev, os.O_RDWR|syscall.O_CLOEXEC, 0)
			if err == nil {
				return f, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("virtio-serial port %s not found (is virtio_console loaded?)", name)
		}
		time.Sleep(20 * time.Millisecond) // polling a device appearing; no event to wait on without udev
	}
}

// supervise runs the service process, reaps every child (PID 1 inherits
// orphans), runs HEALTHCHECKs on request, stops on request and returns the
// process's exit code.
func (p *proc) supervise(sp *spawner) (int, error) {
	cfg := p.cfg
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT, unix.SIGPWR)
	stop := make(chan struct{}, 1)
	health := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(p.ctl)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 1 && f[0] == "stop":
				stop <- struct{}{}
			case len(f) == 2 && f[0] == "health":
				health <- f[1]
			}
		}
	}()
	if _, err := os.Stat(cfg.Dir); err != nil {
		if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
			return 0, fmt.Errorf("workdir %s: %w", cfg.Dir, err)
		}
	}
	pid, exited, err := sp.start(cfg.Argv, false)
	if err != nil {
		return 0, err
	}
	p.send("started")
	var kill <-chan time.Time
	code := -1
	stopping := false
	term := func() {
		if !stopping {
			stopping = true
			_ = unix.Kill(pid, unix.SIGTERM)
			kill = time.After(cfg.StopTimeout)
		}
	}
	for code < 0 {
		select {
		case s := <-sigs:
			if s == unix.SIGCHLD {
				sp.reap()
			} else {
				term()
			}
		case code = <-exited:
		case <-stop:
			term()
		case seq := <-health:
			go p.healthcheck(sp, seq)
		case <-kill:
			_ = unix.Kill(-1, unix.SIGKILL)
		}
	}
	// The service is done: like a container's PID 1 exiting, nothing else survives it.
	_ = unix.Kill(-1, unix.SIGKILL)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); errors.Is(err, unix.ECHILD) {
			break
		}
		select {
		case <-sigs:
		case <-time.After(50 * time.Millisecond):
		}
	}
	return code, nil
}

// healthcheck runs the HEALTHCHECK once, bounded by HealthTimeout, and
// reports "health <seq> <code>" (126: it could not be started).
func (p *proc) healthcheck(sp *spawner, seq string) {
	if len(p.cfg.Healthcheck) == 0 {
		p.send("health " + seq + " 126")
		return
	}
	pid, done, err := sp.start(p.cfg.Healthcheck, true)
	if err != nil {
		fmt.Fprintf(os.Stderr, "orchd-init: HEALTHCHECK: %v\n", err)
		p.send("health " + seq + " 126")
		return
	}
	timeout := p.cfg.HealthTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	var code int
	select {
	case code = <-done:
	case <-t.C:
		_ = unix.Kill(-pid, unix.SIGKILL)
		code = <-done
	}
	p.send(fmt.Sprintf("health %s %d", seq, code))
}

func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s", name, path)
}
