// Package platforms boots the inception VM with Debian's systemd as PID 1
// (`orchd-harness inception --init systemd`) and runs the platforms suite
// (suites/platforms/inner) there: orchd (vm runtime) -> systemd -> orchd
// units -> containerd -> container.
package platforms

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestPlatforms(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "platforms")
}
