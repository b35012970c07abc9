package faults

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/containerd/leaf"
	"github.com/orchd/orchd/suites/framework"
)

var tickLine = regexp.MustCompile(`(?m)^(?:\S+ *\| )?tick (\d+)$`)

// tickCount checks that a service log holds tick 1..n in order, none lost or
// repeated (a probe `tick` restarted by orchd starts again at 1: a new run),
// and returns the n of the last run.
func tickCount(g Gomega, log string) int {
	n := 0
	for _, m := range tickLine.FindAllStringSubmatch(log, -1) {
		got, _ := strconv.Atoi(m[1])
		if got == 1 {
			n = 0
		}
		g.Expect(got).To(Equal(n+1), "a log line lost or repeated: tick %d after tick %d", got, n)
		n = got
	}
	return n
}

var _ = Describe("containerd restarted under running services", Serial, Label("daemon", "restart"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	restarted := func(ctx SpecContext, how string, down func() error) {
		img := s.Image("probe")
		s.WriteOrchfile(fmt.Sprintf(`SERVICE steady
FROM %[1]s
CMD tick 100ms
RESTART no
TIMEOUT_STOP 2s

SERVICE keeper
FROM %[1]s
CMD tick 100ms
RESTART always
RESTART_DELAY 1s
TIMEOUT_STOP 2s

SERVICE ender
FROM %[1]s
CMD tick 100ms
RESTART on-failure
RESTART_DELAY 1s
TIMEOUT_STOP 2s
`, img))
		s.Grow(ctx)
		survivors := []string{"steady", "keeper"}
		c := connect()
		taskOf := map[string]uint32{}
		supervisorOf := map[string]int{}
		restartsOf := map[string]int{}
		for _, svc := range append(survivors, "ender") {
			r := s.EventuallyState(ctx, svc, contract.StateRunning)
			restartsOf[svc] = r.Restarts
			taskOf[svc] = taskPid(ctx, Default, c, s.Namespace, containerOf(s, svc))
			Expect(taskOf[svc]).NotTo(BeZero(), "task of %s", svc)
			supervisorOf[svc] = eventuallyOne(ctx, "supervisor of "+svc, func() []proc { return supervisors(s, svc) }).Pid
		}
		// The agent holds every service's containerd connection: it dials
		// again, and no service runs anywhere else meanwhile.
		oldAgent := eventuallyOne(ctx, "the containerd agent", func() []proc { return agents(s) })
		Eventually(ctx, func(g Gomega) int { return tickCount(g, s.Logs(ctx, "steady")) }).Should(BeNumerically(">=", 5))

		By(how + " containerd; the shims keep the tasks")
		Expect(down()).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			if victim.Pid() == 0 {
				Expect(victim.Restart(ctx)).To(Succeed(), "restart containerd after the spec")
			}
		})
		By("the task of ender ends while containerd is down")
		Expect(syscall.Kill(int(taskOf["ender"]), syscall.SIGKILL)).To(Succeed())
		Eventually(ctx, func() error { return syscall.Kill(int(taskOf["ender"]), 0) }).Should(MatchError(syscall.ESRCH))
		downLog := s.Logs(ctx, "steady")
		restartDaemon(ctx)

		for _, svc := range survivors {
			By(svc + ": still running, same task, same supervisor and agent, no restart")
			s.EventuallyRow(ctx, svc, func(g Gomega, r framework.Row) {
				framework.StopIfFailed(r, contract.StateRunning)
				g.Expect(r.State).To(Equal(contract.StateRunning), "%s: %s", svc, r.Message)
				g.Expect(strings.ToLower(r.TaskStatus)).To(Equal("running"), "task of %s", svc)
				g.Expect(taskPid(ctx, g, c, s.Namespace, containerOf(s, svc))).To(Equal(taskOf[svc]), "the task pid of %s", svc)
				g.Expect(r.Restarts).To(Equal(restartsOf[svc]), "restarts of %s", svc)
				g.Expect(supervisors(s, svc)).To(ConsistOf(HaveField("Pid", supervisorOf[svc])), "the supervisor of %s", svc)
				g.Expect(agents(s)).To(ConsistOf(HaveField("Pid", oldAgent.Pid)), "the containerd agent")
			})
		}
		By("steady's log continues from where it was, nothing lost or repeated")
		before := tickCount(Default, downLog)
		Eventually(ctx, func(g Gomega) int { return tickCount(g, s.Logs(ctx, "steady")) }).Should(BeNumerically(">", before+10))

		// containerd 1.6 keeps the exit status in the shim; 2.x removes a shim
		// with no process left when it restarts, and the leaf reports 255.
		enderExit := 137
		if victim.Toolchain().Major() >= 2 {
			enderExit = leaf.LostExitCode
		}
		By(fmt.Sprintf("ender: its exit while containerd was down is reported (%d), and RESTART on-failure starts it again", enderExit))
		s.EventuallyRow(ctx, "ender", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(Equal(contract.StateRunning), "ender: %s", r.Message)
			g.Expect(r.Restarts).To(Equal(restartsOf["ender"]+1), "one restart of ender")
			g.Expect(r.ExitCode).To(HaveValue(Equal(enderExit)), "ender's last exit: SIGKILL (137), or 255 when containerd kept no status")
			pid := taskPid(ctx, g, c, s.Namespace, containerOf(s, "ender"))
			g.Expect(pid).NotTo(BeZero())
			g.Expect(pid).NotTo(Equal(taskOf["ender"]), "a new task for ender")
		})

		By("it stays that way: one supervisor each, one agent, the same tasks")
		Consistently(ctx, func(g Gomega) {
			for _, svc := range survivors {
				g.Expect(taskPid(ctx, g, c, s.Namespace, containerOf(s, svc))).To(Equal(taskOf[svc]), "the task pid of %s", svc)
			}
			for _, svc := range append(survivors, "ender") {
				g.Expect(supervisors(s, svc)).To(HaveLen(1), "one supervisor for %s", svc)
			}
			g.Expect(agents(s)).To(ConsistOf(HaveField("Pid", oldAgent.Pid)), "the same containerd agent")
		}).WithTimeout(3 * time.Second).Should(Succeed())

		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}

	It("SIGKILL and restart: RESTART no services keep running with the same task, logs continue, fell leaves nothing", func(ctx SpecContext) {
		restarted(ctx, "SIGKILL", victim.Kill)
	}, framework.SpecDeadline(5*time.Minute))

	It("a clean stop and restart: RESTART no services keep running with the same task, logs continue, fell leaves nothing", func(ctx SpecContext) {
		restarted(ctx, "stop (SIGTERM)", victim.Terminate)
	}, framework.SpecDeadline(5*time.Minute))
})
