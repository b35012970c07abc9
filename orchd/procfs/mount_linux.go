package procfs

import "golang.org/x/sys/unix"

// MntDetach is a lazy unmount (umount -l).
const MntDetach = unix.MNT_DETACH
