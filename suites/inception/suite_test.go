// Package inception boots the inception VM (orchd's vm runtime) and checks
// what ran inside: the inner suites against a containerd in the guest, the
// guest's size and cgroup mode, and that nothing leaked on either side.
package inception

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestInception(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "inception")
}
