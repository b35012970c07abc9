//go:build inception

package inner

import (
	"testing"

	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("inception-inner", framework.Options{})

func TestInceptionInner(t *testing.T) { framework.RunSuite(t, "inception-inner") }
