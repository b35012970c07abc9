package lifecycle

import (
	"fmt"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
	"github.com/orchd/orchd/suites/framework"
)

var _ = Describe("readiness", Label("containerd"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("reads starting until containerd runs the task, then running with the task's pid", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE app\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		c, cctx := ctrd(ctx, s)
		s.Grow(ctx)
		By("starting while there is no RUNNING task")
		s.EventuallyRow(ctx, "app", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(Equal(contract.StateStarting), "state (message %q)", r.Message)
			g.Expect(strings.ToLower(r.TaskStatus)).NotTo(Equal("running"), "task status while starting")
			g.Expect(r.Healthy).To(BeFalse())
		})
		By("running, pid = containerd's task pid, leaf_pid = the containerd agent that runs it")
		r := s.EventuallyState(ctx, "app", contract.StateRunning)
		Expect(r.Pid).To(BeNumerically("==", taskPid(cctx, c, s, "app")), "survey pid vs containerd task pid")
		Expect(r.LeafPid).To(BeNumerically(">", 0))
		Expect(r.LeafPid).NotTo(Equal(r.Pid))
		argv, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", r.LeafPid))
		Expect(err).NotTo(HaveOccurred(), "leaf_pid %d", r.LeafPid)
		Expect(strings.Split(string(argv), "\x00")).To(ContainElements(agent.Command, s.StateDir), "leaf_pid %d is not the state dir's containerd agent", r.LeafPid)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("starts a REQUIRES dependent only after the dependency's in-container HEALTHCHECK passes", func(ctx SpecContext) {
		// /tmp/up appears inside db's container 3 s after it starts; the
		// host has no such file, so only a check inside the container passes.
		s.WriteOrchfile(fmt.Sprintf("SERVICE db\nFROM %s\nCMD touch-after 3s /tmp/up\nHEALTHCHECK /probe exists /tmp/up\nTIMEOUT_STOP 2s\n\n"+
			"SERVICE app\nFROM %[1]s\nCMD sleep forever\nREQUIRES db\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		c, cctx := ctrd(ctx, s)
		s.Grow(ctx)
		s.EventuallyState(ctx, "app", contract.StateRunning)
		s.EventuallyRow(ctx, "db", func(g Gomega, r framework.Row) {
			g.Expect(r.Health).To(Equal(contract.HealthHealthy))
		})
		dbCreated, appCreated := createdAt(cctx, c, s, "db"), createdAt(cctx, c, s, "app")
		AddReportEntry("containerd CreatedAt", fmt.Sprintf("db %s app %s", dbCreated, appCreated))
		Expect(appCreated).To(BeTemporally(">=", dbCreated.Add(3*time.Second)),
			"app's container was created before db could be healthy (db created %s)", dbCreated)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("runs a command HEALTHCHECK inside the container: healthy only there, unhealthy when it fails", func(ctx SpecContext) {
		// /probe exists in the image, not on the host.
		Expect("/probe").NotTo(BeAnExistingFile(), "the host must not have /probe for this check to mean anything")
		s.WriteOrchfile(fmt.Sprintf("SERVICE good\nFROM %s\nCMD sleep forever\nHEALTHCHECK /probe exists /probe\nTIMEOUT_STOP 2s\n\n"+
			"SERVICE bad\nFROM %[1]s\nCMD sleep forever\nHEALTHCHECK /probe exists /nonexistent\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		s.Grow(ctx)
		s.EventuallyRow(ctx, "good", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(Equal(contract.StateRunning))
			g.Expect(r.Health).To(Equal(contract.HealthHealthy))
			g.Expect(r.Healthy).To(BeTrue())
		})
		r := s.EventuallyRow(ctx, "bad", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(Equal(contract.StateRunning))
			g.Expect(r.Health).To(Equal(contract.HealthUnhealthy))
		})
		Expect(r.Healthy).To(BeFalse())
		Expect(r.Message).To(ContainSubstring("exit code 1"))
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))
})
