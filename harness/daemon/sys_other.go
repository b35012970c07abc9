//go:build !linux

package daemon

import "syscall"

// daemonAttr: the harness runs containerd on Linux; elsewhere it only builds.
func daemonAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
