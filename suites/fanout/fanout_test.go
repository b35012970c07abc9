package fanout

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

// orchfile renders n probe services named svc-00.. that sleep until felled.
func orchfile(image string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "SERVICE svc-%02d\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 2s\n\n", i, image)
	}
	return b.String()
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("svc-%02d", i)
	}
	return out
}

// expectAllRunning polls survey until every named service runs a RUNNING
// task, and returns the rows by name.
func expectAllRunning(ctx SpecContext, s *framework.Spec, svcs []string) map[string]framework.Row {
	GinkgoHelper()
	byName := map[string]framework.Row{}
	Eventually(ctx, func(g Gomega) {
		rows, err := s.CLI.Survey(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		byName = map[string]framework.Row{}
		for _, r := range rows {
			byName[r.Name] = r
		}
		for _, n := range svcs {
			r, ok := byName[n]
			g.Expect(ok).To(BeTrue(), "%s missing from survey", n)
			framework.StopIfFailed(r, contract.StateRunning)
			g.Expect(r.State).To(Equal(contract.StateRunning), "%s: %s", n, r.Message)
			g.Expect(r.ContainerID).NotTo(BeEmpty(), "%s container id", n)
			g.Expect(strings.ToLower(r.TaskStatus)).To(Equal("running"), "%s task", n)
			g.Expect(r.Pid).To(BeNumerically(">", 0), "%s pid", n)
		}
	}).WithTimeout(runningTimeout(len(svcs))).Should(Succeed())
	return byName
}

// runningTimeout bounds grow-to-running: on 2 loaded cores containerd 1.6
// starts about one container every 5s when many start at once.
func runningTimeout(n int) time.Duration {
	return max(3*time.Minute, time.Duration(n)*10*time.Second)
}

var _ = Describe("fan-out", Label("containerd"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("grows 6 container services to running, all in survey, and fells them to zero leaks", func(ctx SpecContext) {
		s.WriteOrchfile(orchfile(s.Image("probe"), 6))
		s.Grow(ctx)
		rows := expectAllRunning(ctx, s, names(6))
		Expect(s.Survey(ctx)).To(HaveLen(6))
		ids := map[string]bool{}
		for _, r := range rows {
			Expect(r.Restarts).To(BeZero(), "%s restarted", r.Name)
			Expect(r.Label).To(Equal(s.Label(r.Name)))
			ids[r.ContainerID] = true
		}
		Expect(ids).To(HaveLen(6), "every service has its own container")
		s.Fell(ctx)
		Expect(s.Survey(ctx)).To(Or(BeEmpty(), HaveEach(HaveField("State", BeElementOf(contract.StateStopped, contract.StateExited)))))
		s.ExpectNoLeaks(ctx)
	}, SpecTimeout(5*time.Minute))

	It("grows ORCHD_FANOUT_N (default 24) services and fells them to zero leaks", Label("slow"), func(ctx SpecContext) {
		n := framework.EnvInt("ORCHD_FANOUT_N", 24)
		s.WriteOrchfile(orchfile(s.Image("probe"), n))
		s.Grow(ctx)
		expectAllRunning(ctx, s, names(n))
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, SpecTimeout(10*time.Minute))

	It("leaves running services alone on a second grow", func(ctx SpecContext) {
		s.WriteOrchfile(orchfile(s.Image("probe"), 3))
		s.Grow(ctx)
		before := expectAllRunning(ctx, s, names(3))
		s.Grow(ctx)
		after := expectAllRunning(ctx, s, names(3))
		for n, r := range before {
			Expect(after[n].Pid).To(Equal(r.Pid), "%s was restarted by an unchanged grow", n)
			Expect(after[n].ContainerID).To(Equal(r.ContainerID), n)
			Expect(after[n].Restarts).To(BeZero(), n)
		}
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, SpecTimeout(5*time.Minute))

	It("grows only the named services", func(ctx SpecContext) {
		s.WriteOrchfile(orchfile(s.Image("probe"), 4))
		s.Grow(ctx, "svc-01", "svc-03")
		expectAllRunning(ctx, s, []string{"svc-01", "svc-03"})
		Consistently(ctx, func(g Gomega) {
			rows, err := s.CLI.Survey(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			for _, r := range rows {
				if r.Name == "svc-01" || r.Name == "svc-03" {
					g.Expect(r.State).To(Equal(contract.StateRunning), r.Name)
					continue
				}
				g.Expect(r.State).NotTo(BeElementOf(contract.StateRunning, contract.StateStarting, contract.StateRestarting), "%s was not named but runs", r.Name)
				g.Expect(r.ContainerID).To(BeEmpty(), "%s was not named but has a container", r.Name)
			}
		}).Should(Succeed())
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, SpecTimeout(5*time.Minute))
})
