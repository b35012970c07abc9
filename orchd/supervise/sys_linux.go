package supervise

import (
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The supervisor's Linux-only pieces: namespaces, parent-death signals and
// sd_notify sender credentials. Elsewhere (macOS builds orchd for launchd)
// sys_other.go stands in and orchdi is not offered.

const (
	cloneNewPID  = syscall.CLONE_NEWPID
	cloneNewUser = syscall.CLONE_NEWUSER
)

// initAttr starts the service's init in its own pid (and, unprivileged,
// user) namespace, dying with the supervisor.
func initAttr(pc procCtx) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Cloneflags: pc.cloneflags, Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if pc.userns {
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getuid(), HostID: os.Getuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getgid(), HostID: os.Getgid(), Size: 1}}
	}
	return a
}

// leafAttr starts a leaf (contract.Exec.Leaf) straight from the supervisor:
// its service lives in a containerd task with a PID namespace of its own, so
// no init of ours is needed. PDEATHSIG delivers the SIGTERM on which the leaf
// stops its task when the supervisor dies; its own group makes every signal
// the supervisor sends reach all of it.
func leafAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func joinPIDNamespace(initPid int) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/pid", initPid))
	if err != nil {
		return fmt.Errorf("join service namespace: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWPID); err != nil {
		return fmt.Errorf("join service namespace: %w", err)
	}
	return nil
}

func setPassCred(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	return serr
}

// credBuffer is room for the sender credentials of one notice.
func credBuffer() []byte { return make([]byte, syscall.CmsgSpace(syscall.SizeofUcred)) }

// senderPid is the pid in a notice's credentials, 0 when absent.
func senderPid(oob []byte) int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if cred, err := syscall.ParseUnixCredentials(&m); err == nil {
			return int(cred.Pid)
		}
	}
	return 0
}
