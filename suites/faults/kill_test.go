package faults

import (
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
	"github.com/orchd/orchd/suites/framework"
)

var _ = Describe("the supervisor SIGKILLed", Label("supervisor"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("leaves no orphan task or host process behind (bounded)", func(ctx SpecContext) {
		m := marker()
		s.WriteOrchfile(fmt.Sprintf(`SERVICE ctr
FROM %s
CMD sleep forever
RESTART always
TIMEOUT_STOP 2s

SERVICE host
RUN exec sleep %s
RESTART always
TIMEOUT_STOP 2s
`, s.Image("probe"), m))
		s.Grow(ctx)
		s.EventuallyState(ctx, "ctr", contract.StateRunning)
		s.EventuallyRow(ctx, "host", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal(contract.StateRunning)) })
		eventuallyOne(ctx, "host process", func() []proc { return withArgv("sleep", m) })

		for _, svc := range []string{"ctr", "host"} {
			sigkill(eventuallyOne(ctx, "supervisor of "+svc, func() []proc { return supervisors(s, svc) }))
		}

		By("every child dies with its supervisor, within the stop timeouts")
		c := connect()
		Eventually(ctx, func(g Gomega) {
			g.Expect(orchdProcs(s)).To(BeEmpty(), "orphan supervisor or containerd agent")
			g.Expect(withArgv("sleep", m)).To(BeEmpty(), "orphan host process")
			g.Expect(tasks(ctx, g, c, s.Namespace)).To(BeEmpty(), "orphan task")
		}).WithTimeout(framework.Scaled(30 * time.Second)).Should(Succeed())
		Consistently(ctx, func(g Gomega) {
			g.Expect(orchdProcs(s)).To(BeEmpty(), "nothing restarts the killed supervisors")
		}).WithTimeout(2 * time.Second).Should(Succeed())

		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(5*time.Minute))

	// A container service has no leaf process of its own: its supervisor is
	// the containerd agent's client. Its death is what a leaf's was.
	It("of a container service: the agent stops and removes its task; a grow at once waits for that and runs exactly one new task", func(ctx SpecContext) {
		img := s.Image("probe")
		s.WriteOrchfile(fmt.Sprintf(`SERVICE always
FROM %[1]s
CMD sleep forever
RESTART always
TIMEOUT_STOP 2s

SERVICE stubborn
FROM %[1]s
CMD term-ignore
TIMEOUT_STOP 3s
`, img))
		s.Grow(ctx)
		s.EventuallyState(ctx, "always", contract.StateRunning)
		s.EventuallyState(ctx, "stubborn", contract.StateRunning)
		c := connect()
		old := map[string]uint32{}
		for _, svc := range []string{"always", "stubborn"} {
			old[svc] = taskPid(ctx, Default, c, s.Namespace, containerOf(s, svc))
			sigkill(eventuallyOne(ctx, "supervisor of "+svc, func() []proc { return supervisors(s, svc) }))
		}

		By("grow at once: stubborn's old task is still in its TIMEOUT_STOP")
		s.Grow(ctx)
		for _, svc := range []string{"always", "stubborn"} {
			eventuallyNewTask(ctx, c, s, svc, old[svc])
			s.EventuallyRow(ctx, svc, func(g Gomega, r framework.Row) {
				g.Expect(r.State).To(Equal(contract.StateRunning), "%s: %s", svc, r.Message)
				g.Expect(r.TaskStatus).To(Equal("running"))
			})
		}
		By("exactly one supervisor, container and task per service, and it stays that way")
		Consistently(ctx, func(g Gomega) {
			for _, svc := range []string{"always", "stubborn"} {
				g.Expect(supervisors(s, svc)).To(HaveLen(1), "one supervisor for %s", svc)
			}
			want := []string{containerOf(s, "always"), containerOf(s, "stubborn")}
			g.Expect(containers(ctx, g, c, s.Namespace)).To(ConsistOf(want))
			g.Expect(tasks(ctx, g, c, s.Namespace)).To(ConsistOf(want))
			g.Expect(agents(s)).To(HaveLen(1), "one agent")
		}).WithTimeout(2 * time.Second).Should(Succeed())

		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(5*time.Minute))
})

// agents are the containerd agent processes of the spec's state dir.
func agents(s *framework.Spec) []proc {
	return procs(func(p proc) bool {
		return slices.Contains(p.Argv, agent.Command) && slices.Contains(p.Argv, s.StateDir)
	})
}

var _ = Describe("the containerd agent SIGKILLed", Label("agent"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("fails its services, which come back under RESTART always in one new agent, and fell leaves nothing", func(ctx SpecContext) {
		img := s.Image("probe")
		s.WriteOrchfile(fmt.Sprintf(`SERVICE a
FROM %[1]s
CMD sleep forever
RESTART always
RESTART_DELAY 1s
TIMEOUT_STOP 2s

SERVICE b
FROM %[1]s
CMD sleep forever
RESTART always
RESTART_DELAY 1s
TIMEOUT_STOP 2s
`, img))
		s.Grow(ctx)
		s.EventuallyState(ctx, "a", contract.StateRunning)
		s.EventuallyState(ctx, "b", contract.StateRunning)
		c := connect()
		old := map[string]uint32{}
		for _, svc := range []string{"a", "b"} {
			old[svc] = taskPid(ctx, Default, c, s.Namespace, containerOf(s, svc))
		}
		oldAgent := eventuallyOne(ctx, "one agent for the grove", func() []proc { return agents(s) })
		sigkill(oldAgent)

		By("each service restarts with a new task, both in one new agent")
		for _, svc := range []string{"a", "b"} {
			eventuallyNewTask(ctx, c, s, svc, old[svc])
			s.EventuallyRow(ctx, svc, func(g Gomega, r framework.Row) {
				g.Expect(r.Restarts).To(BeNumerically(">=", 1), "the supervisor must count the restart")
				g.Expect(r.State).To(Equal(contract.StateRunning), "%s: %s", svc, r.Message)
				g.Expect(r.TaskStatus).To(Equal("running"))
			})
		}
		Eventually(ctx, func(g Gomega) {
			as := agents(s)
			g.Expect(as).To(HaveLen(1), "exactly one agent")
			g.Expect(as[0].Pid).NotTo(Equal(oldAgent.Pid))
			g.Expect(containers(ctx, g, c, s.Namespace)).To(ConsistOf(containerOf(s, "a"), containerOf(s, "b")))
		}).Should(Succeed())

		s.Fell(ctx)
		Expect(agents(s)).To(BeEmpty(), "fell returned with the agent still running")
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(5*time.Minute))
})
