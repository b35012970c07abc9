// Package inner holds the checks that run inside the inception VM (compiled
// with go test -c and started by the in-VM driver): the VM got what the outer
// Orchfile asked for, and containers under the inner containerd honor limits
// on cgroup v2.
package inner

import (
	"testing"

	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("inception-inner", framework.Options{})

func TestInceptionInner(t *testing.T) { framework.RunSuite(t, "inception-inner") }
