//go:build !linux

package guest

import "errors"

// Main is the guest init; it runs only as PID 1 of a Linux guest.
func Main() error { return errors.New("vm-init runs only as PID 1 inside a Linux guest") }
