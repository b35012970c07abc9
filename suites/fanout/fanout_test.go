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
	return framework.Scaled(max(3*time.Minute, time.Duration(n)*10*time.Second))
}

// containersOf reads each row's container and task from containerd.
func containersOf(ctx SpecContext, s *framework.Spec, rows map[string]framework.Row) map[string]framework.Container {
	GinkgoHelper()
	out := map[string]framework.Container{}
	for n, r := range rows {
		out[n] = s.Container(ctx, Default, r.ContainerID)
		Expect(out[n].TaskPid).NotTo(BeZero(), "%s has no task in containerd", n)
	}
	return out
}

// expectDistinct expects every service to run its own task, in its own
// snapshot and its own cgroup, as containerd and the kernel report them.
func expectDistinct(ctx SpecContext, s *framework.Spec, rows map[string]framework.Row) {
	GinkgoHelper()
	pids, snaps, cgroups := map[uint32]string{}, map[string]string{}, map[string]string{}
	for n, c := range containersOf(ctx, s, rows) {
		Expect(c.SnapshotKey).NotTo(BeEmpty(), "%s snapshot key", n)
		Expect(c.TaskCgroup).NotTo(BeElementOf("", "/"), "%s runs in the root cgroup", n)
		for _, seen := range []struct {
			m   map[string]string
			key string
			of  string
		}{{snaps, c.Snapshotter + "/" + c.SnapshotKey, "snapshot"}, {cgroups, c.TaskCgroup, "cgroup"}} {
			Expect(seen.m).NotTo(HaveKey(seen.key), "%s shares its %s %s with %s", n, seen.of, seen.key, seen.m[seen.key])
			seen.m[seen.key] = n
		}
		Expect(pids).NotTo(HaveKey(c.TaskPid), "%s shares task pid %d with %s", n, c.TaskPid, pids[c.TaskPid])
		pids[c.TaskPid] = n
	}
	Expect(pids).To(HaveLen(len(rows)))
}

var _ = Describe("fan-out", Label("containerd"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("grows 6 container services to running, all in survey, and fells them to zero leaks", func(ctx SpecContext) {
		s.WriteOrchfile(orchfile(s.Image("probe"), 6))
		s.Grow(ctx)
		rows := expectAllRunning(ctx, s, names(6))
		Expect(s.Survey(ctx)).To(HaveLen(6))
		for _, r := range rows {
			Expect(r.Restarts).To(BeZero(), "%s restarted", r.Name)
			Expect(r.Label).To(Equal(s.Label(r.Name)))
		}
		expectDistinct(ctx, s, rows)
		s.Fell(ctx)
		Expect(s.Survey(ctx)).To(Or(BeEmpty(), HaveEach(HaveField("State", BeElementOf(contract.StateStopped, contract.StateExited)))))
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(5*time.Minute))

	It("grows ORCHD_FANOUT_N (default 24) services and fells them to zero leaks", Label("slow"), func(ctx SpecContext) {
		n := framework.EnvInt("ORCHD_FANOUT_N", 24)
		s.WriteOrchfile(orchfile(s.Image("probe"), n))
		s.Grow(ctx)
		expectDistinct(ctx, s, expectAllRunning(ctx, s, names(n)))
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(10*time.Minute))

	It("leaves running services alone on a second grow", func(ctx SpecContext) {
		s.WriteOrchfile(orchfile(s.Image("probe"), 3))
		s.Grow(ctx)
		before := expectAllRunning(ctx, s, names(3))
		s.Grow(ctx)
		after := expectAllRunning(ctx, s, names(3))
		tasksBefore := containersOf(ctx, s, before)
		tasksAfter := containersOf(ctx, s, after)
		for n, r := range before {
			Expect(after[n].ContainerID).To(Equal(r.ContainerID), n)
			Expect(after[n].Restarts).To(BeZero(), n)
			Expect(tasksAfter[n].TaskPid).To(Equal(tasksBefore[n].TaskPid), "%s: containerd runs another task after an unchanged grow", n)
			Expect(tasksAfter[n].SnapshotKey).To(Equal(tasksBefore[n].SnapshotKey), "%s: another snapshot after an unchanged grow", n)
		}
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(5*time.Minute))

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
	}, framework.SpecDeadline(5*time.Minute))
})
