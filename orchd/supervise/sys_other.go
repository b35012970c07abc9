//go:build !linux

package supervise

import (
	"errors"
	"net"
	"syscall"
)

// orchd's own supervisor needs Linux namespaces; these let the rest of orchd
// (the launchd platform on macOS) build.

const (
	cloneNewPID  = 0
	cloneNewUser = 0
)

var errLinuxOnly = errors.New("orchd's own supervisor (platform orchdi) runs only on Linux; on macOS use --platform launchd")

func initAttr(procCtx) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func leafAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func joinPIDNamespace(int) error { return errLinuxOnly }

func setPassCred(*net.UnixConn) error { return nil }

func credBuffer() []byte { return nil }

func senderPid([]byte) int { return 0 }
