package faults

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

// killDaemon SIGKILLs containerd (shims survive) and makes sure it comes back
// for the specs after this one even if this one fails.
func killDaemon() {
	GinkgoHelper()
	By("SIGKILL containerd")
	Expect(victim.Kill()).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		if victim.Pid() == 0 {
			Expect(victim.Restart(ctx)).To(Succeed(), "restart containerd after the spec")
		}
	})
}

func restartDaemon(ctx SpecContext) {
	GinkgoHelper()
	By("restart containerd")
	Expect(victim.Restart(ctx)).To(Succeed(), "restart containerd:\n%s", victim.LogTail(40))
}

var _ = Describe("containerd killed", Serial, Label("daemon"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("while services run: supervisors notice, RESTART always comes back, no duplicate container, fell leaves nothing", func(ctx SpecContext) {
		img := s.Image("probe")
		s.WriteOrchfile(fmt.Sprintf(`SERVICE always
FROM %[1]s
CMD sleep forever
RESTART always
RESTART_DELAY 1s
START_LIMIT_BURST 1000
START_LIMIT_INTERVAL 10s
TIMEOUT_STOP 2s

SERVICE once
FROM %[1]s
CMD sleep forever
RESTART no
TIMEOUT_STOP 2s
`, img))
		s.Grow(ctx)
		before := s.EventuallyState(ctx, "always", contract.StateRunning)
		s.EventuallyState(ctx, "once", contract.StateRunning)
		oldAgent := eventuallyOne(ctx, "the containerd agent", func() []proc { return agents(s) })
		c := connect()
		oldTask := taskPid(ctx, Default, c, s.Namespace, containerOf(s, "always"))

		killDaemon()
		restartDaemon(ctx)

		// The old task may survive in its shim and look running for a moment; what
		// counts is the state once the agent is attached to containerd again.
		s.EventuallyRow(ctx, "always", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(Equal(contract.StateRunning), "always: %s", r.Message)
			g.Expect(strings.ToLower(r.TaskStatus)).To(Equal("running"))
			as := agents(s)
			g.Expect(as).To(HaveLen(1))
			if as[0].Pid != oldAgent.Pid {
				g.Expect(r.Restarts).To(BeNumerically(">", before.Restarts), "a run in a new agent is a counted restart")
			}
			g.Expect(containers(ctx, g, c, s.Namespace)).To(ContainElement(containerOf(s, "always")))
		})
		if as := agents(s); len(as) == 1 && as[0].Pid != oldAgent.Pid {
			// A run in a new agent replaces the stale container: wait for its own task.
			eventuallyNewTask(ctx, c, s, "always", oldTask)
		}
		once := s.EventuallyRow(ctx, "once", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(BeElementOf(contract.StateRunning, contract.StateExited, contract.StateFailed), "once: %s", r.Message)
			if r.State == contract.StateRunning {
				g.Expect(strings.ToLower(r.TaskStatus)).To(Equal("running"), "a running service must have a running task")
			}
		})
		GinkgoWriter.Printf("after the restart: once %s (%s)\n", once.State, once.Message)

		By("exactly one container per service, and it stays that way")
		want := []string{containerOf(s, "always")}
		if once.State == contract.StateRunning {
			want = append(want, containerOf(s, "once"))
		}
		Consistently(ctx, func(g Gomega) {
			ids := containers(ctx, g, c, s.Namespace)
			g.Expect(ids).To(ContainElements(want))
			for _, id := range ids {
				g.Expect(id).To(BeElementOf(containerOf(s, "always"), containerOf(s, "once")), "a container orchd did not name")
			}
			g.Expect(agents(s)).To(HaveLen(1), "exactly one containerd agent")
			g.Expect(supervisors(s, "always")).To(HaveLen(1), "exactly one supervisor for always")
		}).WithTimeout(5 * time.Second).Should(Succeed())

		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(6*time.Minute))

	It("before grow: a clear error naming the socket, nothing half-created; grow works once it is back", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE web\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		killDaemon()

		res := s.Orchd(ctx, "grow")
		Expect(res.ExitCode).NotTo(BeZero(), "grow without containerd must fail:\n%s", res)
		Expect(res.Stderr).To(ContainSubstring(victim.Address()), "the error must name the socket")
		Expect(len(res.Stderr)).To(BeNumerically("<", 8<<10))

		By("nothing half-created: no supervisor, no leaf, no status file claiming to run")
		Expect(orchdProcs(s)).To(BeEmpty())
		st, _ := filepath.Glob(filepath.Join(s.Layout.StatusDir(), "*.json"))
		Expect(st).To(BeEmpty(), "status files after a refused grow")
		pids, _ := filepath.Glob(filepath.Join(s.Layout.RunDir(), "*.pid"))
		Expect(pids).To(BeEmpty(), "pid files after a refused grow")

		restartDaemon(ctx)
		s.Grow(ctx)
		s.EventuallyState(ctx, "web", contract.StateRunning)
		c := connect()
		Eventually(ctx, func(g Gomega) []string { return containers(ctx, g, c, s.Namespace) }).
			Should(Equal([]string{containerOf(s, "web")}))
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(4*time.Minute))
})
