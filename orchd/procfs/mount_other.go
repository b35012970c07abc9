//go:build !linux

package procfs

// MntDetach: no lazy unmount outside Linux (the harness runs on Linux).
const MntDetach = 0
