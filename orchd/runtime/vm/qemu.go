package vm

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/runtime/vm/guest"
	"github.com/orchd/orchd/orchd/spec"
)

// Defaults when the service sets no MEMORY / CPUS.
const (
	DefaultMemoryMiB = 512
	DefaultCPUs      = 1
	minMemoryMiB     = 128
)

// QemuUID and QemuGID are who qemu runs as when orchd runs as root (the
// overflow ids, "nobody"/"nogroup" on Debian): files guest root creates in a
// VOLUME belong to them on the host.
const (
	QemuUID = 65534
	QemuGID = 65534
)

// ShareSecurityModel is the 9p security model of every VOLUME: qemu creates
// files with its own ids and mode 0600 (dirs 0700) on the host and keeps the
// guest's owner, mode and device numbers in user.virtfs.* xattrs, so nothing
// the guest does makes a host file setuid, setgid, a device or root-owned.
const ShareSecurityModel = "mapped-xattr"

// Share is one VOLUME exported over virtio-9p.
type Share struct {
	Tag      string
	Source   string
	ReadOnly bool
}

// Machine is everything that decides qemu's command line.
type Machine struct {
	KVM bool
	// BIOS is a firmware file for -bios (qboot boots a kernel directly, faster
	// than SeaBIOS and without writing to the console); empty = qemu's default.
	BIOS      string
	MemoryMiB int
	CPUs      int
	Kernel    string
	Initrd    string
	Append    string
	Shares    []Share
	Publish   []spec.Publish
	// ControlFD is the fd number (in qemu) of a connected stream socket that
	// becomes the guest's ControlPort.
	ControlFD int
	// StderrFD, when not 0, is the fd number (in qemu) of a connected stream
	// socket that becomes the guest's StderrPort.
	StderrFD int
}

// Resources maps MEMORY (rounded up to MiB, at least minMemoryMiB: the guest
// command's memory.max holds it to MEMORY exactly) and CPUS (rounded up; without
// CPUS, CPU_QUOTA rounded up to whole CPUs) to a Machine's size. The fraction
// of a CPU is the guest command's cpu.max (GuestLimits).
func (m *Machine) Resources(r spec.Resources) error {
	m.MemoryMiB, m.CPUs = DefaultMemoryMiB, DefaultCPUs
	n, err := r.MemoryBytes()
	if err != nil {
		return err
	}
	if n > 0 {
		m.MemoryMiB = max(int((n+(1<<20)-1)>>20), minMemoryMiB)
	}
	switch {
	case r.CPUs != nil && *r.CPUs > 0:
		m.CPUs = int(math.Ceil(*r.CPUs))
	case r.CPUQuota != "":
		pct, err := r.CPUQuotaPercent()
		if err != nil {
			return err
		}
		m.CPUs = (pct + 99) / 100
	}
	return nil
}

// KVMAvailable reports whether qemu can run a KVM vCPU here: /dev/kvm opens
// and qemu starts (paused) and quits a KVM machine with the -cpu host model
// Args uses. /dev/kvm alone is not enough: under nested virtualization qemu can
// abort setting up the vCPU ("failed to set MSR"), and then TCG is the way.
func KVMAvailable(ctx context.Context, qemu string) bool {
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-nodefaults", "-no-user-config", "-display", "none",
		"-machine", "q35,accel=kvm", "-cpu", "host", "-m", "64", "-S", "-qmp", "stdio")
	cmd.Stdin = strings.NewReader(`{"execute":"qmp_capabilities"}{"execute":"quit"}`)
	return cmd.Run() == nil
}

// Kernel console levels: the service's console shows kernel messages more
// urgent than the level (LogQuiet: emergencies only).
const (
	LogQuiet    = 1
	LogWarnings = 5
	LogDebug    = 8
)

// KernelCmdline is the guest kernel's command line: serial console, kernel
// messages below loglevel, a panic ends the VM, and orchd's init with its
// argument.
func KernelCmdline(loglevel int) string {
	parts := []string{"console=ttyS0", "panic=-1", "edd=off", "no_timer_check", "tsc=reliable", "rdinit=/orchd/orchd"}
	if loglevel <= LogQuiet {
		parts = append(parts, "quiet")
	}
	parts = append(parts, "loglevel="+strconv.Itoa(loglevel))
	return strings.Join(append(parts, "--", "vm-init"), " ")
}

// TCGCPU is the CPU model qemu emulates without KVM.
const TCGCPU = "qemu64"

// Args is qemu's argv (without the binary).
func (m Machine) Args() []string {
	a := []string{"-nodefaults", "-no-user-config", "-nographic", "-no-reboot"}
	if m.KVM {
		a = append(a, "-machine", "q35,accel=kvm", "-cpu", "host")
	} else {
		// TCG: qemu64, not max. Measured in the inception guest (qemu 7.2, 2
		// vCPUs, median of 9): one exec of orchd 116-135 ms against 238-241 ms
		// with max, of runc 106-124 against 153-182 ms, touching 32 MiB of
		// fresh memory 212-259 against 448-669 ms; pure computation (sha256)
		// about the same; max,la57=off no better than max. The guest's work
		// is execs and page faults, and everything it runs is built for the
		// x86-64 baseline qemu64 provides.
		a = append(a, "-machine", "q35,accel=tcg", "-cpu", TCGCPU)
	}
	if m.BIOS != "" {
		a = append(a, "-bios", m.BIOS)
	}
	a = append(a,
		"-m", strconv.Itoa(m.MemoryMiB),
		"-smp", strconv.Itoa(m.CPUs),
		"-kernel", m.Kernel,
		"-initrd", m.Initrd,
		"-append", m.Append,
		// The console is the service's log; signal=off keeps ^C for orchd.
		"-chardev", "stdio,id=con0,signal=off",
		"-serial", "chardev:con0",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", "socket,id=ctl0,fd="+strconv.Itoa(m.ControlFD),
		"-device", "virtserialport,bus=vser0.0,chardev=ctl0,name="+guest.ControlPort,
	)
	if m.StderrFD != 0 {
		a = append(a, "-chardev", "socket,id=err0,fd="+strconv.Itoa(m.StderrFD),
			"-device", "virtserialport,bus=vser0.0,chardev=err0,name="+guest.StderrPort)
	}
	for i, s := range m.Shares {
		opt := fmt.Sprintf("local,id=fs%d,path=%s,security_model=%s", i, qemuEscape(s.Source), ShareSecurityModel)
		if s.ReadOnly {
			opt += ",readonly=on"
		}
		a = append(a, "-fsdev", opt, "-device", fmt.Sprintf("virtio-9p-pci,fsdev=fs%d,mount_tag=%s", i, s.Tag))
	}
	if len(m.Publish) > 0 {
		nd := "user,id=net0"
		for _, p := range m.Publish {
			nd += fmt.Sprintf(",hostfwd=tcp:%s:%d-:%d", p.HostIP, p.Host, p.Container)
		}
		a = append(a, "-netdev", nd, "-device", "virtio-net-pci,netdev=net0")
	}
	return a
}

// qemuEscape doubles commas, qemu's option-value escape.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// FindQboot returns qemu's qboot firmware when installed.
func FindQboot() string {
	for _, p := range []string{"/usr/share/qemu/qboot.rom", "/usr/local/share/qemu/qboot.rom"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}
