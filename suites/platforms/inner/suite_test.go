//go:build inception

package inner

import (
	"testing"

	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("platforms", framework.Options{})

func TestPlatforms(t *testing.T) { framework.RunSuite(t, "platforms") }
