package agent

import (
	"context"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/procfs"
)

// peerPid is the agent's pid, from the connection's credentials.
func (c *agentConn) peerPid() int {
	raw, err := c.c.SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			pid = int(cred.Pid)
		}
	})
	return pid
}

// waitExit waits (bounded) for the agent to exit; its socket closed first.
func waitExit(pid int, timeout time.Duration) {
	procfs.WaitGone(context.Background(), []int{pid}, timeout)
}
