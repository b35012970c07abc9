// Package fanout checks that many container services grow to running
// together, are all reported by survey, and fell to zero leaks.
package fanout

import (
	"testing"

	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("fanout", framework.Options{})

func TestFanout(t *testing.T) { framework.RunSuite(t, "fanout") }
