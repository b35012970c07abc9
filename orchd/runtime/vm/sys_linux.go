package vm

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const sockCloexec = unix.SOCK_CLOEXEC

// qemuAttr: qemu dies with its leaf and gets its own process group.
func qemuAttr() *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if os.Geteuid() == 0 {
		// qemu need not be root: it serves the VOLUMEs as QemuUID, so guest
		// root cannot own files on the host, and keeps only the capabilities
		// to read what it is given (kernel, initrd, volumes) and bind
		// PUBLISHed ports below 1024.
		a.Credential = &syscall.Credential{Uid: QemuUID, Gid: QemuGID, Groups: []uint32{}}
		a.AmbientCaps = []uintptr{unix.CAP_DAC_OVERRIDE, unix.CAP_DAC_READ_SEARCH, unix.CAP_NET_BIND_SERVICE}
	}
	return a
}
