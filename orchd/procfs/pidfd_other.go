//go:build !linux

package procfs

import "errors"

// pidfdOpen: no pidfds here, so WaitGone polls.
func pidfdOpen(int) (int, error) { return -1, errors.ErrUnsupported }
