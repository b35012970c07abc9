//go:build !linux

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether f (a command's stdin or stdout) is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(file.Fd()), unix.TIOCGETA)
	return err == nil
}
