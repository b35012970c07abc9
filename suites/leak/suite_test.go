// Package leak runs stress cycles (grow, all running, fell) and proves that
// each cycle leaves zero containerd objects, processes, mounts and cgroups,
// and that containerd itself does not grow fds, threads or goroutines.
package leak

import (
	"testing"

	"github.com/orchd/orchd/suites/framework"
)

// Debug: the private daemon exposes pprof, for goroutine counts.
var fw = framework.New("leak", framework.Options{Debug: true})

func TestLeak(t *testing.T) { framework.RunSuite(t, "leak") }
