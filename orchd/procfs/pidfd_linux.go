package procfs

import "golang.org/x/sys/unix"

// pidfdOpen returns a pidfd for pid (Linux 5.3+).
func pidfdOpen(pid int) (int, error) { return unix.PidfdOpen(pid, 0) }
