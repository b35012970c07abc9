package vm

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/container"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/healthcheck"
	"github.com/orchd/orchd/orchd/runtime/vm/guest"
	"github.com/orchd/orchd/orchd/runtime/vm/initramfs"
	"github.com/orchd/orchd/orchd/runtime/vm/kernel"
	"github.com/orchd/orchd/orchd/runtime/vm/ocilayout"
)

// GuestModules are the kernel modules a guest loads (when not built in):
// virtio PCI transport, the control port, 9p volumes, overlayfs for container
// runtimes inside the guest, and the network device when ports are published.
func GuestModules(network bool) []string {
	m := []string{"virtio_pci", "virtio_console", "9pnet_virtio", "9p", "overlay"}
	if network {
		m = append(m, "virtio_net")
	}
	return m
}

// healthGrace is how much longer than healthcheck.Timeout the host waits for
// the guest's verdict before counting the check as failed.
const healthGrace = 10 * time.Second

// HealthKey is the sd_notify field that carries a HEALTHCHECK verdict run
// where the service lives ("healthy" or "unhealthy").
const HealthKey = "X_ORCHD_HEALTH"

// EnvDebug, when set to 1 in vm-run's environment, keeps kernel messages on the console.
const EnvDebug = "ORCHD_VM_DEBUG"

// logLevel is the kernel console level: level, or LogDebug with EnvDebug=1.
func logLevel(level int) int {
	if os.Getenv(EnvDebug) == "1" {
		return LogDebug
	}
	return level
}

// bootGrace is how long a guest may take, beyond TIMEOUT_STOP, to boot (if it
// had not yet), stop its process and power off before qemu is killed.
func bootGrace(kvm bool) time.Duration {
	if kvm {
		return 10 * time.Second
	}
	return 30 * time.Second
}

// silenceLimit is how long a booted guest may stay silent on its control port
// (no "started", no other line) before the leaf counts it as hung. A guest
// here starts its command in about 1 s with KVM and 4 s under TCG; under TCG
// on an overloaded host a boot has been seen to hang without a word for
// minutes, which a second boot does not repeat.
func silenceLimit(kvm bool) time.Duration {
	if kvm {
		return 30 * time.Second
	}
	return 90 * time.Second
}

// bootAttempts is how many times a guest that stays silent is booted.
const bootAttempts = 2

// errGuestSilent is boot's error for a guest killed by the silence limit.
var errGuestSilent = errors.New("the guest said nothing on its control port")

// Leaf runs one vm service in the foreground: `orchd vm-run`.
type Leaf struct {
	Stdout io.Writer // the guest console
	Stderr io.Writer // qemu's and the leaf's own diagnostics
	Log    *slog.Logger
	// Self is the static orchd binary that becomes the guest's init
	// (os.Executable when empty).
	Self string
	// OnBoot, when set, is called with qemu's pid once it runs; OnStarted once
	// the guest reports the service process started.
	OnBoot    func(pid int)
	OnStarted func()
	// SilenceLimit overrides how long a booted guest may stay silent before
	// it is killed and booted again (zero: 30 s with KVM, 90 s under TCG).
	SilenceLimit time.Duration
}

func (l *Leaf) silenceLimit(kvm bool) time.Duration {
	if l.SilenceLimit > 0 {
		return l.SilenceLimit
	}
	return silenceLimit(kvm)
}

// Run boots the service described by specFile and returns its exit code. When
// ctx is cancelled the guest is asked to stop (SIGTERM, TIMEOUT_STOP, SIGKILL
// inside), and qemu is killed if it overruns.
func (l *Leaf) Run(ctx context.Context, specFile string) (int, error) {
	if l.Log == nil {
		l.Log = slog.Default()
	}
	s, err := LoadSpec(specFile)
	if err != nil {
		return 1, err
	}
	qemu, err := exec.LookPath(QemuBinary)
	if err != nil {
		return 1, fmt.Errorf("%s not found; install it with `%s`", QemuBinary, QemuInstall)
	}
	var k kernel.Kernel
	if s.Kernel != "" {
		k = kernel.Kernel{Vmlinuz: s.Kernel, ModulesDir: s.KernelModules, Version: filepath.Base(s.KernelModules)}
		if err := k.Validate(); err != nil {
			return 1, fmt.Errorf("kernel from %s/%s: %w", kernel.EnvKernel, kernel.EnvModules, err)
		}
	} else if k, err = kernel.Resolve(ctx, l.Stderr); err != nil {
		return 1, fmt.Errorf("kernel: %w", err)
	}

	work := contract.Layout{StateDir: s.StateDir}.VMWorkDir(s.Label)
	if err := os.RemoveAll(work); err != nil {
		return 1, fmt.Errorf("clear %s: %w", work, err)
	}
	if err := os.MkdirAll(work, 0o700); err != nil {
		return 1, fmt.Errorf("work dir: %w", err)
	}
	defer os.RemoveAll(work)

	start := time.Now()
	m := Machine{KVM: KVMAvailable(ctx, qemu), BIOS: FindQboot(), Kernel: k.Vmlinuz, Initrd: filepath.Join(work, "initrd.cpio"), Append: KernelCmdline(logLevel(LogQuiet)), Publish: s.Service.Publish}
	if err := m.Resources(s.Service.Resources); err != nil {
		return 1, err
	}
	shares, mounts, err := volumeShares(s)
	if err != nil {
		return 1, err
	}
	m.Shares = shares
	cfg, err := l.buildInitrd(s, k, mounts, m.Initrd)
	if err != nil {
		return 1, err
	}
	l.Log.Info("vm: initramfs built", "service", s.Service.Name, "image", s.Service.Image, "kernel", k.Version, "took", time.Since(start).Round(time.Millisecond))

	m.ControlFD, m.StderrFD = 3, 4
	for attempt := 1; ; attempt++ {
		code, err := l.bootOnce(ctx, qemu, m, s, cfg)
		if !errors.Is(err, errGuestSilent) || attempt == bootAttempts || ctx.Err() != nil {
			return code, err
		}
		// The second boot keeps the kernel's warnings on the console: if it
		// hangs too, the log shows where.
		l.Log.Warn("vm: guest silent after boot; killed qemu, booting again", "service", s.Service.Name,
			"silent_for", l.silenceLimit(m.KVM), "attempt", attempt+1, "of", bootAttempts)
		m.Append = KernelCmdline(logLevel(LogWarnings))
	}
}

// bootOnce boots the machine once with fresh control and stderr ports.
func (l *Leaf) bootOnce(ctx context.Context, qemu string, m Machine, s *Spec, cfg guest.Config) (int, error) {
	host, guestEnd, err := socketPair()
	if err != nil {
		return 1, err
	}
	defer host.Close()
	errHost, errGuest, err := socketPair()
	if err != nil {
		guestEnd.Close()
		return 1, err
	}
	defer errHost.Close()
	return l.boot(ctx, qemu, m, s, cfg, host, guestEnd, errHost, errGuest)
}

// notify sends an sd_notify message to $NOTIFY_SOCKET (nothing when unset):
// READY=1 once the guest command runs, health verdicts, STOPPING=1.
func (l *Leaf) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		l.Log.Warn("vm: sd_notify", "state", state, "err", err)
	}
}

func (l *Leaf) boot(ctx context.Context, qemu string, m Machine, s *Spec, cfg guest.Config, host, guestEnd, errHost, errGuest *os.File) (int, error) {
	// Pdeathsig fires when the thread that forked qemu exits; keep this
	// goroutine on its thread until qemu is gone.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()

	cmd := exec.Command(qemu, m.Args()...)
	cmd.Stdout, cmd.Stderr = l.Stdout, l.Stderr
	cmd.ExtraFiles = []*os.File{guestEnd, errGuest}
	cmd.SysProcAttr = qemuAttr()
	l.Log.Debug("vm: qemu", "argv", strings.Join(cmd.Args, " "))
	err := cmd.Start()
	guestEnd.Close()
	errGuest.Close()
	if err != nil {
		return 1, fmt.Errorf("start %s: %w", qemu, err)
	}
	// The guest command's stderr arrives on its own port: the leaf's stderr,
	// which the supervisor sends to STDERR.
	errDone := make(chan struct{})
	go func() {
		defer close(errDone)
		_, _ = io.Copy(l.Stderr, errHost)
	}()
	l.Log.Info("vm: booting", "service", s.Service.Name, "pid", cmd.Process.Pid, "memory_mib", m.MemoryMiB, "cpus", m.CPUs, "kvm", m.KVM)
	if l.OnBoot != nil {
		l.OnBoot(cmd.Process.Pid)
	}

	l.notify(fmt.Sprintf("STATUS=booting (qemu pid %d)", cmd.Process.Pid))

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	reported := make(chan int, 1)
	heard := make(chan struct{})
	var heardOnce sync.Once
	ctlDone := make(chan struct{})
	healthCtx, stopHealth := context.WithCancel(ctx)
	defer stopHealth()
	verdicts := make(chan healthReply, 4)
	go func() {
		defer close(ctlDone)
		sc := bufio.NewScanner(host)
		for sc.Scan() {
			line := sc.Text()
			heardOnce.Do(func() { close(heard) })
			switch {
			case line == "started":
				l.Log.Info("vm: service process started", "service", s.Service.Name)
				// MAINPID is qemu: the host process that is the service.
				l.notify(fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=guest command started", cmd.Process.Pid))
				if l.OnStarted != nil {
					l.OnStarted()
				}
				// A command HEALTHCHECK is this leaf's to run when a supervisor listens.
				if len(cfg.Healthcheck) > 0 && os.Getenv("NOTIFY_SOCKET") != "" {
					go l.healthLoop(healthCtx, host, verdicts, s.Service.Name)
				}
			case strings.HasPrefix(line, "health "):
				var r healthReply
				if _, err := fmt.Sscanf(line, "health %d %d", &r.seq, &r.code); err == nil {
					select {
					case verdicts <- r:
					default: // nobody waits for it any more
					}
				}
			case strings.HasPrefix(line, "warn "):
				l.Log.Warn("vm: "+strings.TrimPrefix(line, "warn "), "service", s.Service.Name)
			case strings.HasPrefix(line, "exit "):
				if n, err := strconv.Atoi(strings.TrimPrefix(line, "exit ")); err == nil {
					reported <- n
				}
			}
		}
	}()

	var killTimer <-chan time.Time
	stopping, silent := false, false
	silence := time.NewTimer(l.silenceLimit(m.KVM))
	defer silence.Stop()
	var waitErr error
loop:
	for {
		select {
		case waitErr = <-exited:
			break loop
		case <-heard:
			silence.Stop()
			heard = nil
		case <-silence.C:
			if !stopping {
				silent = true
				_ = cmd.Process.Kill()
			}
		case <-ctx.Done():
			if !stopping {
				stopping = true
				stopHealth()
				l.notify("STOPPING=1")
				if _, err := io.WriteString(host, "stop\n"); err != nil {
					l.Log.Warn("vm: stop request not delivered", "err", err)
				}
				grace := s.Service.Timeouts.StopTimeout() + bootGrace(m.KVM)
				killTimer = time.After(grace)
				l.Log.Info("vm: stopping", "service", s.Service.Name, "kill_after", grace)
			}
		case <-killTimer:
			l.Log.Warn("vm: guest did not power off in time; killing qemu", "service", s.Service.Name)
			_ = cmd.Process.Kill()
			killTimer = nil
		}
	}
	// qemu is gone: its ends of the sockets are closed, so the readers end.
	<-ctlDone
	<-errDone
	select {
	case code := <-reported:
		return code, nil
	default:
	}
	if silent {
		return 1, fmt.Errorf("vm %s: %w for %s after boot; qemu killed", s.Service.Name, errGuestSilent, l.silenceLimit(m.KVM))
	}
	if stopping {
		return 128 + int(syscall.SIGKILL), fmt.Errorf("vm %s: killed before the guest reported an exit code", s.Service.Name)
	}
	return 1, fmt.Errorf("vm %s: qemu ended without a guest exit code: %v", s.Service.Name, waitErr)
}

// healthReply is the guest's "health <seq> <code>".
type healthReply struct {
	seq  int64
	code int
}

// healthLoop asks the guest to run the HEALTHCHECK (healthcheck.Loop's
// cadence) and reports each change of verdict as X_ORCHD_HEALTH.
func (l *Leaf) healthLoop(ctx context.Context, host io.Writer, replies <-chan healthReply, name string) {
	check := func(ctx context.Context, seq int64) error {
		if _, err := fmt.Fprintf(host, "health %d\n", seq); err != nil {
			return fmt.Errorf("request not delivered: %w", err)
		}
		wait := time.NewTimer(healthcheck.Timeout + healthGrace)
		defer wait.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-wait.C:
				return errors.New("no answer from the guest")
			case r := <-replies:
				if r.seq != seq {
					continue // a late answer to an earlier request
				}
				if r.code != 0 {
					return fmt.Errorf("exit code %d", r.code)
				}
				return nil
			}
		}
	}
	healthcheck.Loop(ctx, check, func(verdict string, err error) {
		msg := ""
		if err != nil {
			msg = "healthcheck: " + err.Error()
			l.Log.Warn("vm: unhealthy", "service", name, "err", err)
		} else {
			l.Log.Info("vm: healthy", "service", name)
		}
		l.notify(fmt.Sprintf("%s=%s\nSTATUS=%s", HealthKey, verdict, msg))
	})
}

func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|sockCloexec, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("control socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "ctl-host"), os.NewFile(uintptr(fds[1]), "ctl-guest"), nil
}

// volumeShares maps VOLUMEs to 9p shares: named volumes live under
// <data>/volumes/<namespace>/<name> (created 0700), host paths must exist.
func volumeShares(s *Spec) ([]Share, []guest.Mount, error) {
	vols, err := container.Volumes(s.Service.Volumes, s.DataDir, s.Namespace, s.ProjectDir)
	if err != nil {
		return nil, nil, err
	}
	var shares []Share
	var mounts []guest.Mount
	for i, v := range vols {
		tag := "vol" + strconv.Itoa(i)
		shares = append(shares, Share{Tag: tag, Source: v.Source})
		mounts = append(mounts, guest.Mount{Tag: tag, Destination: v.Destination})
	}
	return shares, mounts, nil
}

// buildInitrd flattens the image, adds the init, modules and guest config, and
// writes the newc archive to out.
func (l *Leaf) buildInitrd(s *Spec, k kernel.Kernel, mounts []guest.Mount, out string) (guest.Config, error) {
	var cfg guest.Config
	err := l.writeInitrd(s, k, mounts, out, &cfg)
	return cfg, err
}

func (l *Leaf) writeInitrd(s *Spec, k kernel.Kernel, mounts []guest.Mount, out string, cfgOut *guest.Config) error {
	dir, tag, ok := container.ParseLayoutRef(s.Service.Image, s.ProjectDir)
	if !ok {
		return fmt.Errorf("service %s: image %s is not a local OCI layout; the vm runtime boots images from `%sPATH[:TAG]`, `./PATH[:TAG]` or `/PATH[:TAG]`", s.Service.Name, s.Service.Image, container.LayoutScheme)
	}
	img, err := ocilayout.Open(dir, tag)
	if err != nil {
		return err
	}
	spill, err := os.CreateTemp(filepath.Dir(out), "spill-")
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer os.Remove(spill.Name())
	defer spill.Close()
	tree := initramfs.NewTree(spill)
	if err := ApplyImage(tree, img); err != nil {
		return err
	}

	self := l.Self
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return fmt.Errorf("locate orchd: %w", err)
		}
	}
	if err := CheckStatic(self); err != nil {
		return err
	}
	if err := addHostFile(tree, self, guest.Binary, 0o755); err != nil {
		return err
	}

	idx, err := kernel.LoadModules(k.ModulesDir)
	if err != nil {
		return err
	}
	files, err := idx.Closure(GuestModules(len(s.Service.Publish) > 0)...)
	if err != nil {
		return err
	}
	var modules []string
	for _, f := range files {
		gp := filepath.Join(guest.ModulesDir, filepath.Base(f))
		if err := addHostFile(tree, f, gp, 0o644); err != nil {
			return err
		}
		modules = append(modules, gp)
	}

	in := GuestInput{Image: img.Config.Config, Service: s.Service, Modules: modules, Volumes: mounts}
	if in.EnvFiles, err = container.ReadEnvFiles(s.Service.EnvFiles, s.ProjectDir); err != nil {
		return err
	}
	in.Passwd = readTreeFile(tree, "etc/passwd")
	in.Group = readTreeFile(tree, "etc/group")
	cfg, err := GuestConfig(in)
	if err != nil {
		return err
	}
	cfg.Debug = os.Getenv(EnvDebug) == "1"
	*cfgOut = cfg
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("guest config: %w", err)
	}
	if err := tree.AddBytes(guest.ConfigPath, 0o600, b); err != nil {
		return err
	}
	tree.AddDir(guest.Dir, 0o700)
	tree.AddDir("dev", 0o755)
	// The kernel opens /dev/console for init's stdio before anything is mounted.
	tree.AddNode("dev/console", initramfs.ModeChr|0o600, 5, 1)
	tree.AddNode("dev/null", initramfs.ModeChr|0o666, 1, 3)
	for _, d := range []string{"proc", "sys", "run", "tmp"} {
		if _, ok := tree.Lookup(d); !ok {
			tree.AddDir(d, 0o755)
		}
	}

	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if err := tree.WriteCPIO(f); err != nil {
		f.Close()
		return fmt.Errorf("initramfs: %w", err)
	}
	return f.Close()
}

// ApplyImage applies every layer of img to tree, in order.
func ApplyImage(tree *initramfs.Tree, img *ocilayout.Image) error {
	for i := range img.Manifest.Layers {
		r, err := img.Layer(i)
		if err != nil {
			return err
		}
		err = tree.ApplyLayer(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("image %s: %w", img.Dir, err)
		}
	}
	return nil
}

func readTreeFile(t *initramfs.Tree, p string) []byte {
	e, ok := t.Lookup(p)
	if !ok || e.Mode&initramfs.ModeType != initramfs.ModeReg {
		return nil
	}
	b, _ := io.ReadAll(t.Open(e))
	return b
}

func addHostFile(t *initramfs.Tree, src, dst string, mode uint32) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return t.AddFile(dst, mode, f, st.Size())
}

// CheckStatic fails unless path is a statically linked ELF (no interpreter):
// the guest has no dynamic loader orchd could rely on.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("guest init %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New("guest init " + path + " is dynamically linked; build orchd with CGO_ENABLED=0 (go build -o orchd ./cmd/orchd)")
		}
	}
	return nil
}
