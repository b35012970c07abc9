package oneshot

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

// stays polls survey over the Consistently window and expects svc to keep
// state with zero restarts.
func stays(ctx SpecContext, s *framework.Spec, svc, state string) {
	GinkgoHelper()
	Consistently(ctx, func(g Gomega) {
		rows, err := s.CLI.Survey(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		r, ok := framework.FindRow(rows, svc)
		g.Expect(ok).To(BeTrue(), "%s in survey", svc)
		g.Expect(r.State).To(Equal(state), "%s state", svc)
		g.Expect(r.Restarts).To(BeZero(), "%s restarts", svc)
	}).WithTimeout(4 * time.Second).Should(Succeed())
}

var _ = Describe("oneshot", Label("containerd"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("runs once, exits 0, writes the ready marker and is never restarted", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE init\nFROM %s\nCMD exit 0\nONESHOT true\n", s.Image("probe")))
		s.Grow(ctx)
		r := s.EventuallyState(ctx, "init", contract.StateExited)
		Expect(r.ExitCode).To(HaveValue(BeZero()))
		Expect(s.Layout.ReadyFile(s.Label("init"))).To(BeAnExistingFile(), "ready marker")
		stays(ctx, s, "init", contract.StateExited)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("honors a non-zero exit code: failed, no ready marker, never restarted", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE init\nFROM %s\nCMD exit 3\nONESHOT true\n", s.Image("probe")))
		s.Grow(ctx)
		r := s.EventuallyState(ctx, "init", contract.StateFailed)
		Expect(r.ExitCode).To(HaveValue(Equal(3)))
		Expect(s.Layout.ReadyFile(s.Label("init"))).NotTo(BeAnExistingFile(), "a failed oneshot is not ready")
		stays(ctx, s, "init", contract.StateFailed)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("is never restarted, even with RESTART always", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE init\nFROM %s\nCMD exit 0\nONESHOT true\nRESTART always\nRESTART_DELAY 1s\n\n"+
			"SERVICE bad\nFROM %[1]s\nCMD exit 4\nONESHOT true\nRESTART on-failure\nRESTART_DELAY 1s\n", s.Image("probe")))
		s.Grow(ctx)
		s.EventuallyState(ctx, "init", contract.StateExited)
		r := s.EventuallyState(ctx, "bad", contract.StateFailed)
		Expect(r.ExitCode).To(HaveValue(Equal(4)))
		stays(ctx, s, "init", contract.StateExited)
		stays(ctx, s, "bad", contract.StateFailed)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("makes a REQUIRES dependent wait until it completes, then start after it", func(ctx SpecContext) {
		// init runs long enough for survey to see app waiting: a window,
		// stretched with the time scale like a deadline (each survey is
		// slow where every exec is).
		s.WriteOrchfile(fmt.Sprintf("SERVICE init\nFROM %s\nCMD crash-after %v 0\nONESHOT true\nREADINESS_TIMEOUT %v\n\n"+
			"SERVICE app\nFROM %[1]s\nCMD sleep forever\nREQUIRES init\nTIMEOUT_STOP 2s\n", s.Image("probe"), framework.Scaled(4*time.Second), framework.Scaled(60*time.Second)))
		s.Grow(ctx)
		By("app waits while init runs")
		Eventually(ctx, func(g Gomega) {
			rows, err := s.CLI.Survey(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			initRow, _ := framework.FindRow(rows, "init")
			app, _ := framework.FindRow(rows, "app")
			framework.StopIfFailed(app, contract.StateWaiting)
			g.Expect(initRow.State).To(Equal(contract.StateRunning))
			g.Expect(app.State).To(Equal(contract.StateWaiting))
			g.Expect(app.ContainerID).To(BeEmpty(), "app has a container before init completed")
		}).Should(Succeed())
		By("app starts after init exited 0")
		app := s.EventuallyState(ctx, "app", contract.StateRunning)
		initRow := s.EventuallyState(ctx, "init", contract.StateExited)
		Expect(initRow.ExitCode).To(HaveValue(BeZero()))
		Expect(app.Since).NotTo(BeTemporally("<", initRow.Since), "app started before init completed")
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("chains: each oneshot completes before the next REQUIRES dependent starts", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE first\nFROM %s\nCMD crash-after 1s 0\nONESHOT true\n\n"+
			"SERVICE second\nFROM %[1]s\nCMD crash-after 1s 0\nONESHOT true\nREQUIRES first\n\n"+
			"SERVICE app\nFROM %[1]s\nCMD sleep forever\nREQUIRES second\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		s.Grow(ctx)
		app := s.EventuallyState(ctx, "app", contract.StateRunning)
		first := s.EventuallyState(ctx, "first", contract.StateExited)
		second := s.EventuallyState(ctx, "second", contract.StateExited)
		// second runs for 1s after first exited; its exit is its status time.
		Expect(second.Since).To(BeTemporally(">=", first.Since.Add(time.Second)), "second ran before first completed")
		Expect(app.Since).NotTo(BeTemporally("<", second.Since), "app started before second completed")
		Expect(s.Layout.ReadyFile(s.Label("first"))).To(BeAnExistingFile())
		Expect(s.Layout.ReadyFile(s.Label("second"))).To(BeAnExistingFile())
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("when it fails, blocks REQUIRES dependents (they fail) but not AFTER dependents", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE init\nFROM %s\nCMD exit 3\nONESHOT true\nREADINESS_TIMEOUT 20s\n\n"+
			"SERVICE hard\nFROM %[1]s\nCMD sleep forever\nREQUIRES init\nTIMEOUT_STOP 2s\n\n"+
			"SERVICE soft\nFROM %[1]s\nCMD sleep forever\nAFTER init\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		s.Grow(ctx)
		s.EventuallyState(ctx, "init", contract.StateFailed)
		hard := s.EventuallyState(ctx, "hard", contract.StateFailed)
		Expect(hard.ContainerID).To(BeEmpty(), "hard must never have started")
		Expect(hard.Restarts).To(BeZero())
		soft := s.EventuallyState(ctx, "soft", contract.StateRunning)
		Expect(soft.Restarts).To(BeZero())
		stays(ctx, s, "hard", contract.StateFailed)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))
})
