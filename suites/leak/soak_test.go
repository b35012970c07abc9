package leak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/harness/cycles"
	"github.com/orchd/orchd/harness/soak"
	"github.com/orchd/orchd/suites/framework"
)

var _ = Describe("soak", Label("containerd", "slow", "soak"), Serial, func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("ORCHD_SOAK_CYCLES (default 20) cycles of ORCHD_SOAK_SERVICES (default 4) services with a random SIGKILL each: containerd's and the host's resources stay flat", func(ctx SpecContext) {
		n := framework.EnvInt("ORCHD_SOAK_CYCLES", 20)
		services := framework.EnvInt("ORCHD_SOAK_SERVICES", 4)
		seed := uint64(GinkgoRandomSeed())
		AddReportEntry("kill seed", fmt.Sprintf("%d", seed))
		Expect(fw.Daemon.Pid).NotTo(BeZero(), "the soak samples containerd's process: run it against the suite's private daemon, or set %s", framework.EnvSocket)
		sampler := soak.Sampler{Pid: func() int { return fw.Daemon.Pid }, DebugSocket: fw.Daemon.DebugSocket}
		var samples []soak.Sample
		runCycles(ctx, s, services, n, func(o *cycles.Options) {
			o.KillRandom = rand.New(rand.NewPCG(seed, 0))
			o.AfterCycle = func(ctx context.Context, c *cycles.Cycle) error {
				smp, err := sampler.Sample(ctx, c.N)
				samples = append(samples, smp)
				return err
			}
		})
		rep := soak.Judge(samples, soak.DefaultBounds())
		var b strings.Builder
		rep.WriteTable(&b)
		AddReportEntry("slopes", b.String())
		Expect(rep.OK()).To(BeTrue(), "a resource grew over the cycles:\n%s", b.String())
	}, framework.SpecDeadline(60*time.Minute))
})
