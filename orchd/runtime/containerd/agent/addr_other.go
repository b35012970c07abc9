//go:build !linux

package agent

import (
	"path/filepath"

	"github.com/orchd/orchd/orchd/contract"
)

// socketAddress is a file in the state dir's run dir elsewhere.
func socketAddress(stateDir, hash string) string {
	return filepath.Join(contract.Layout{StateDir: stateDir}.RunDir(), "agent-"+hash[:8]+".sock")
}
