//go:build !linux

package containerd

import "errors"

// rawTerminal: the containerd runtime runs on Linux only.
func rawTerminal(int) (func(), error) {
	return nil, errors.New("an interactive terminal needs Linux (the containerd runtime runs there)")
}
