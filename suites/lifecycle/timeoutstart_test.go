package lifecycle

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

// bound is TIMEOUT_START 2s + TIMEOUT_STOP 2s + a margin for the stop's
// deletes and survey's polling, measured from grow's return (the supervisor
// spawns the leaf after that, and TIMEOUT_START counts from the spawn).
const bound = 2*time.Second + 2*time.Second + 4*time.Second

var _ = Describe("TIMEOUT_START", Label("containerd"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("stops and fails a service that never becomes healthy, naming TIMEOUT_START", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE app\nFROM %s\nCMD sleep forever\nHEALTHCHECK /probe exists /never\n"+
			"TIMEOUT_START 2s\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		s.Grow(ctx)
		t0 := time.Now()
		r := s.EventuallyState(ctx, "app", contract.StateFailed)
		Expect(time.Since(t0)).To(BeNumerically("<", bound), "failed only after %s", time.Since(t0))
		Expect(r.Message).To(ContainSubstring("TIMEOUT_START 2s"))
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("counts a start that timed out as failed for RESTART", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE app\nFROM %s\nCMD sleep forever\nHEALTHCHECK /probe exists /never\n"+
			"TIMEOUT_START 2s\nTIMEOUT_STOP 2s\nRESTART on-failure\nRESTART_DELAY 1s\nSTART_LIMIT_BURST 100\n", s.Image("probe")))
		s.Grow(ctx)
		t0 := time.Now()
		r := s.EventuallyRow(ctx, "app", func(g Gomega, r framework.Row) {
			g.Expect(r.Restarts).To(BeNumerically(">=", 1))
		})
		Expect(time.Since(t0)).To(BeNumerically("<", bound+time.Second), "restarted only after %s", time.Since(t0))
		Expect(r.Message).To(ContainSubstring("TIMEOUT_START 2s"))
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("stops and fails a oneshot still running after TIMEOUT_START", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE job\nFROM %s\nCMD sleep 60s\nONESHOT true\nTIMEOUT_START 2s\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		s.Grow(ctx)
		t0 := time.Now()
		r := s.EventuallyState(ctx, "job", contract.StateFailed)
		Expect(time.Since(t0)).To(BeNumerically("<", bound), "failed only after %s", time.Since(t0))
		Expect(r.Message).To(ContainSubstring("oneshot still running after TIMEOUT_START 2s"))
		Expect(s.Layout.ReadyFile(s.Label("job"))).NotTo(BeAnExistingFile())
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))
})
