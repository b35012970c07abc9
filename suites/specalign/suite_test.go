// Package specalign checks, from inside the container, that every Orchfile
// directive that reaches a container is applied: the probe's report (env,
// args, cwd, user, hostname, mounts, rlimits, cgroup limits, netns) is
// compared with what the Orchfile asked for, on cgroup v1 and v2.
package specalign

import (
	"testing"

	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("specalign", framework.Options{})

func TestSpecAlign(t *testing.T) { framework.RunSuite(t, "specalign") }
