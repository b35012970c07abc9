package crashrestart

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

// service renders one probe service with extra directive lines.
func service(image, name, cmd string, lines ...string) string {
	out := fmt.Sprintf("SERVICE %s\nFROM %s\nCMD %s\nTIMEOUT_STOP 2s\n", name, image, cmd)
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

// restartsAtLeast polls survey until svc has restarted n times.
func restartsAtLeast(ctx SpecContext, s *framework.Spec, svc string, n int) framework.Row {
	GinkgoHelper()
	return s.EventuallyRow(ctx, svc, func(g Gomega, r framework.Row) {
		g.Expect(r.Restarts).To(BeNumerically(">=", n), "restarts of %s (state %s, %s)", svc, r.State, r.Message)
	})
}

// settles expects svc to stay in state with exactly restarts restarts.
func settles(ctx SpecContext, s *framework.Spec, svc, state string, restarts int) {
	GinkgoHelper()
	Consistently(ctx, func(g Gomega) {
		rows, err := s.CLI.Survey(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		r, ok := framework.FindRow(rows, svc)
		g.Expect(ok).To(BeTrue())
		g.Expect(r.State).To(Equal(state), "%s state", svc)
		g.Expect(r.Restarts).To(Equal(restarts), "%s restarts", svc)
	}).WithTimeout(4 * time.Second).Should(Succeed())
}

var _ = Describe("crash-restart", Label("containerd"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("on-failure restarts a failing container and counts the restarts", func(ctx SpecContext) {
		s.WriteOrchfile(service(s.Image("probe"), "crash", "exit 3",
			"RESTART on-failure", "RESTART_DELAY 1s", "START_LIMIT_BURST 100", "START_LIMIT_INTERVAL 60s"))
		s.Grow(ctx)
		r := restartsAtLeast(ctx, s, "crash", 2)
		Expect(r.State).NotTo(Equal(contract.StateFailed), "gave up early: %s", r.Message)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("on-failure does not restart a container that exits 0", func(ctx SpecContext) {
		s.WriteOrchfile(service(s.Image("probe"), "done", "exit 0", "RESTART on-failure", "RESTART_DELAY 1s"))
		s.Grow(ctx)
		r := s.EventuallyState(ctx, "done", contract.StateExited)
		Expect(r.ExitCode).To(HaveValue(BeZero()))
		settles(ctx, s, "done", contract.StateExited, 0)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("always restarts even after exit 0", func(ctx SpecContext) {
		s.WriteOrchfile(service(s.Image("probe"), "again", "exit 0",
			"RESTART always", "RESTART_DELAY 1s", "START_LIMIT_BURST 100", "START_LIMIT_INTERVAL 60s"))
		s.Grow(ctx)
		restartsAtLeast(ctx, s, "again", 2)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("no does not restart a failing container", func(ctx SpecContext) {
		s.WriteOrchfile(service(s.Image("probe"), "once", "exit 3", "RESTART no"))
		s.Grow(ctx)
		r := s.EventuallyRow(ctx, "once", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(BeElementOf(contract.StateFailed, contract.StateExited))
		})
		Expect(r.ExitCode).To(HaveValue(Equal(3)))
		settles(ctx, s, "once", r.State, 0)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("restarts a service that crashes after running, with a new task", func(ctx SpecContext) {
		// The first run must last long enough to be seen: a window,
		// stretched with the time scale like a deadline.
		s.WriteOrchfile(service(s.Image("probe"), "flaky", fmt.Sprintf("crash-after %v 1", framework.Scaled(2*time.Second)),
			"RESTART on-failure", "RESTART_DELAY 1s", "START_LIMIT_BURST 100", "START_LIMIT_INTERVAL 60s"))
		s.Grow(ctx)
		// The task pids are containerd's: the leaf's own pid changes with
		// every leaf, whatever happens to the task.
		var first, second framework.Row
		var firstTask, secondTask uint32
		Eventually(ctx, func(g Gomega) {
			rows, err := s.CLI.Survey(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			r, ok := framework.FindRow(rows, "flaky")
			g.Expect(ok).To(BeTrue())
			g.Expect(r.State).To(Equal(contract.StateRunning))
			g.Expect(r.Restarts).To(BeZero(), "the first run was missed")
			c := s.Container(ctx, g, r.ContainerID)
			g.Expect(c.TaskPid).NotTo(BeZero(), "no task in containerd yet")
			first, firstTask = r, c.TaskPid
		}).WithPolling(50 * time.Millisecond).Should(Succeed())
		Eventually(ctx, func(g Gomega) {
			rows, err := s.CLI.Survey(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			r, ok := framework.FindRow(rows, "flaky")
			g.Expect(ok).To(BeTrue())
			g.Expect(r.Restarts).To(BeNumerically(">=", 1))
			g.Expect(r.State).To(Equal(contract.StateRunning))
			c := s.Container(ctx, g, r.ContainerID)
			g.Expect(c.TaskPid).NotTo(BeZero(), "no task in containerd after the restart")
			second, secondTask = r, c.TaskPid
		}).Should(Succeed())
		Expect(secondTask).NotTo(Equal(firstTask), "a restart runs a new containerd task")
		Expect(second.Since).To(BeTemporally(">", first.Since))
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("waits RESTART_DELAY between restarts", func(ctx SpecContext) {
		const delay = 3 * time.Second
		s.WriteOrchfile(service(s.Image("probe"), "slow", "exit 3",
			"RESTART on-failure", "RESTART_DELAY 3s", "START_LIMIT_BURST 100", "START_LIMIT_INTERVAL 120s"))
		s.Grow(ctx)
		// Record when survey first shows each restart count; the poll
		// interval bounds the measurement error.
		const poll = 100 * time.Millisecond
		seen := map[int]time.Time{}
		Eventually(ctx, func(g Gomega) {
			rows, err := s.CLI.Survey(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			r, ok := framework.FindRow(rows, "slow")
			g.Expect(ok).To(BeTrue())
			if _, ok := seen[r.Restarts]; !ok && r.Restarts > 0 {
				seen[r.Restarts] = time.Now()
			}
			g.Expect(seen).To(HaveKey(3))
			g.Expect(seen).To(HaveKey(2))
		}).WithPolling(poll).WithTimeout(framework.Scaled(2 * time.Minute)).Should(Succeed())
		for n := 2; n <= 3; n++ {
			prev, ok := seen[n-1]
			if !ok {
				continue // the count jumped past n-1 between two polls
			}
			gap := seen[n].Sub(prev)
			By(fmt.Sprintf("restart %d came %s after restart %d", n, gap.Round(time.Millisecond), n-1))
			Expect(gap).To(BeNumerically(">=", delay-3*poll), "restart %d only %s after the previous one", n, gap)
			Expect(gap).To(BeNumerically("<", delay+20*time.Second), "restart %d took %s", n, gap)
		}
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(4*time.Minute))

	It("gives up after START_LIMIT_BURST restarts within START_LIMIT_INTERVAL (state failed)", func(ctx SpecContext) {
		s.WriteOrchfile(service(s.Image("probe"), "burst", "exit 5",
			"RESTART always", "RESTART_DELAY 1s", "START_LIMIT_BURST 2", "START_LIMIT_INTERVAL 60s"))
		s.Grow(ctx)
		r := s.EventuallyState(ctx, "burst", contract.StateFailed)
		Expect(r.Restarts).To(Equal(2), "restarts before giving up")
		Expect(r.ExitCode).To(HaveValue(Equal(5)))
		settles(ctx, s, "burst", contract.StateFailed, 2)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))

	It("fell during a restart loop freezes it: nothing restarts afterwards and nothing leaks", func(ctx SpecContext) {
		first, second := "loop", "loop2"
		if fw.Deviates("runsc-id-prefix") {
			first = "loop1"
		}
		s.WriteOrchfile(service(s.Image("probe"), first, "exit 3",
			"RESTART always", "RESTART_DELAY 1s", "START_LIMIT_BURST 100", "START_LIMIT_INTERVAL 60s") + "\n" +
			service(s.Image("probe"), second, "crash-after 0.5s 1",
				"RESTART on-failure", "RESTART_DELAY 1s", "START_LIMIT_BURST 100", "START_LIMIT_INTERVAL 60s"))
		s.Grow(ctx)
		restartsAtLeast(ctx, s, first, 1)
		restartsAtLeast(ctx, s, second, 1)
		s.Fell(ctx)
		Consistently(ctx, func(g Gomega) {
			rows, err := s.CLI.Survey(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			for _, r := range rows {
				g.Expect(r.State).NotTo(BeElementOf(contract.StateRunning, contract.StateStarting, contract.StateRestarting, contract.StateWaiting), "%s after fell", r.Name)
				g.Expect(r.TaskStatus).To(BeEmpty(), "%s has a task after fell", r.Name)
			}
		}).WithTimeout(4 * time.Second).Should(Succeed())
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))
})
