// Package crashrestart checks restart policies of container services:
// on-failure, always, no, RESTART_DELAY, START_LIMIT_BURST/INTERVAL, and that
// fell stops a restart loop for good.
package crashrestart

import (
	"testing"

	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("crashrestart", framework.Options{})

func TestCrashRestart(t *testing.T) { framework.RunSuite(t, "crashrestart") }
