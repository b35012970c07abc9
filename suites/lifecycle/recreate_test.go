package lifecycle

import (
	"fmt"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/suites/framework"
)

// runsLine matches what `probe runs` prints: how many runs its file counts.
var runsLine = regexp.MustCompile(`probe: runs: (\d+)`)

func runCounts(log string) []string {
	var out []string
	for _, m := range runsLine.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1])
	}
	return out
}

var _ = Describe("RECREATE", Label("containerd"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	// Each run appends a line to /runs in the container's root filesystem,
	// prints how many lines it holds, and crashes; RESTART starts it again.
	orchfile := func(recreate string) string {
		return fmt.Sprintf("SERVICE app\nFROM %s\nCMD runs /runs --then crash-after 1s 3\nRECREATE %s\n"+
			"RESTART on-failure\nRESTART_DELAY 1s\nSTART_LIMIT_BURST 100\nSTART_LIMIT_INTERVAL 10m\nTIMEOUT_STOP 2s\n", s.Image("probe"), recreate)
	}

	It("never: a restart reuses the container and its snapshot, so a written file survives", func(ctx SpecContext) {
		s.WriteOrchfile(orchfile("never"))
		s.Grow(ctx)
		Eventually(ctx, func(g Gomega) {
			g.Expect(runCounts(s.Logs(ctx, "app"))).To(ContainElements("1", "2", "3"))
		}).Should(Succeed(), "the runs file grows across restarts")
		r, _ := framework.FindRow(s.Survey(ctx), "app")
		Expect(r.Restarts).To(BeNumerically(">=", 2))
		s.Fell(ctx)
		c, cctx := ctrd(ctx, s)
		_, err := c.LoadContainer(cctx, containerd.ContainerID(s.Namespace, "app"))
		Expect(err).To(MatchError(ContainSubstring("not found")), "container after fell")
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("always: every start gets a fresh container and snapshot", func(ctx SpecContext) {
		s.WriteOrchfile(orchfile("always"))
		s.Grow(ctx)
		var counts []string
		Eventually(ctx, func(g Gomega) {
			counts = runCounts(s.Logs(ctx, "app"))
			g.Expect(len(counts)).To(BeNumerically(">=", 3), "runs logged")
		}).Should(Succeed())
		for _, n := range counts {
			Expect(n).To(Equal("1"), "a run found the previous run's file: %v", counts)
		}
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))
})
