package server

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// samePeer admits only processes of the agent's own uid: the abstract
// socket has no file permissions to do it.
func samePeer(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			ok = int(cred.Uid) == os.Getuid()
		}
	})
	return ok
}
