package faults

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/harness/cycles"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

// fells are the `orchd fell` processes of the spec's state dir.
func fells(s *framework.Spec) []proc {
	return procs(func(p proc) bool {
		return len(p.Argv) > 1 && p.Argv[1] == "fell" && slices.Contains(p.Argv, s.StateDir)
	})
}

var _ = Describe("a half-done fell", Label("fell", "half-fell"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("SIGKILLed at random points: the next fell leaves zero leaks, and grow then starts exactly one of everything", func(ctx SpecContext) {
		n := framework.EnvInt("ORCHD_HALF_FELL_ROUNDS", 4)
		seed := faultSeed()
		rng := rand.New(rand.NewPCG(seed, seed^0x2545f4914f6cdd1d))
		AddReportEntry("fault seed", fmt.Sprintf("ORCHD_FAULTS_SEED=%d", seed))
		By(fmt.Sprintf("seed %d (replay: ORCHD_FAULTS_SEED=%d)", seed, seed))
		m := marker()
		services := []string{"always", "once", "slow"}
		s.WriteOrchfile(fmt.Sprintf(`SERVICE always
FROM %[1]s
CMD sleep forever
RESTART always
RESTART_DELAY 1s
TIMEOUT_STOP 2s

SERVICE once
FROM %[1]s
CMD sleep forever
RESTART no
TIMEOUT_STOP 2s

SERVICE slow
FROM %[1]s
CMD term-ignore
TIMEOUT_STOP 3s

SERVICE host
RUN exec sleep %[2]s
TIMEOUT_STOP 2s
`, s.Image("probe"), m))
		c := connect()
		halfDone := 0
		for round := 1; round <= n; round++ {
			s.Grow(ctx)
			By(fmt.Sprintf("round %d/%d: exactly one of everything after grow", round, n))
			for _, svc := range services {
				s.EventuallyState(ctx, svc, contract.StateRunning)
			}
			Eventually(ctx, func() []proc { return withArgv("sleep", m) }).Should(HaveLen(1))
			Consistently(ctx, func(g Gomega) {
				for _, svc := range services {
					g.Expect(supervisors(s, svc)).To(HaveLen(1), "one supervisor for %s", svc)
				}
				g.Expect(supervisors(s, "host")).To(HaveLen(1), "one supervisor for host")
				g.Expect(agents(s)).To(HaveLen(1), "one containerd agent")
				g.Expect(withArgv("sleep", m)).To(HaveLen(1), "one host process")
				want := []string{containerOf(s, "always"), containerOf(s, "once"), containerOf(s, "slow")}
				g.Expect(containers(ctx, g, c, s.Namespace)).To(ConsistOf(want), "one container per service")
				g.Expect(tasks(ctx, g, c, s.Namespace)).To(ConsistOf(want), "one task per service")
			}).WithTimeout(2 * time.Second).Should(Succeed())

			// The kill lands somewhere in fell's work: stopping supervisors,
			// waiting out TIMEOUT_STOP, sweeping containerd, removing files.
			// On a quiet machine fell takes a little over 2 s here (slow's
			// TIMEOUT_STOP), so the moment is drawn below that: a kill after
			// fell finished tests nothing.
			after := time.Duration(rng.IntN(1500)) * time.Millisecond
			By(fmt.Sprintf("round %d/%d: SIGKILL fell %s after it starts", round, n, after))
			var wg sync.WaitGroup
			var first cycles.Invocation
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				first, _ = s.CLI.Run(ctx, "fell")
			}()
			victim := eventuallyOne(ctx, "orchd fell", func() []proc { return fells(s) })
			select {
			case <-time.After(after): // the kill moment is the spec's input
				sigkill(victim)
			case <-ctx.Done():
			}
			wg.Wait()
			// A fell that finished before the kill exits 0; a killed one reports the signal.
			if first.ExitCode != 0 {
				halfDone++
			}
			GinkgoWriter.Printf("round %d: SIGKILL %s after fell started: exit %d; it had printed: %s\n", round, after, first.ExitCode, strings.TrimSpace(first.Stderr))

			By(fmt.Sprintf("round %d/%d: the next fell finishes the job", round, n))
			timedFell(ctx, s)
			Expect(withArgv("sleep", m)).To(BeEmpty(), "host process survived the second fell")
			s.ExpectNoLeaks(ctx)
		}
		Expect(halfDone).To(BeNumerically(">", 0), "no round killed a fell midway: nothing was tested (seed %d)", seed)
	}, framework.SpecDeadline(15*time.Minute))
})
