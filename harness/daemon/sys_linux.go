package daemon

import "syscall"

// daemonAttr: containerd gets its own process group (a terminal's Ctrl-C
// reaches us, and we stop it in order) and never outlives the harness.
// Strictly Pdeathsig follows the OS thread that forked; Go only retires
// threads of goroutines that exit while locked to them, which nothing here does.
func daemonAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
