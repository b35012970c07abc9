//go:build !linux

package vm

import "syscall"

// The vm runtime boots Linux guests with qemu on Linux; these let orchd
// build elsewhere.
const sockCloexec = 0

func qemuAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
