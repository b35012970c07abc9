// Package lifecycle checks that a service's lifecycle is truthful: a
// container is running (and ready for dependents) only once containerd runs
// its task and its HEALTHCHECK, run inside the container, passes; TIMEOUT_START
// bounds readiness; RECREATE keeps or renews a container's root filesystem;
// RELOAD runs a service's reload command without restarting it.
package lifecycle

import (
	"testing"

	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("lifecycle", framework.Options{})

func TestLifecycle(t *testing.T) { framework.RunSuite(t, "lifecycle") }
