// Package oneshot checks ONESHOT services: run once, exit code honored,
// never restarted, ready marker on success, and how dependents wait for them.
package oneshot

import (
	"testing"

	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("oneshot", framework.Options{})

func TestOneshot(t *testing.T) { framework.RunSuite(t, "oneshot") }
