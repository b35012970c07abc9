package crashrestart

import (
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/logline"
	"github.com/orchd/orchd/suites/framework"
)

var _ = Describe("per-service verbs on a container", Label("containerd", "verbs"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("exec runs in the container with its env and passes the exit code; kill signals the task; restart makes a new task", func(ctx SpecContext) {
		s.WriteOrchfile(service(s.Image("probe"), "box", "sleep forever",
			"ENV GREETING=hello-from-box", "RESTART always", "RESTART_DELAY 100ms", "START_LIMIT_BURST 100", "START_LIMIT_INTERVAL 60s") +
			service(s.Image("probe"), "side", "sleep forever"))
		s.Grow(ctx)
		box := s.EventuallyState(ctx, "box", contract.StateRunning)
		side := s.EventuallyState(ctx, "side", contract.StateRunning)

		By("exec: the container's environment, the command's exit code")
		res := s.Orchd(ctx, "exec", "box", "--", "/probe", "report")
		Expect(res.ExitCode).To(BeZero(), "%s", res)
		Expect(res.Stdout).To(ContainSubstring(`"GREETING":"hello-from-box"`), "%s", res)
		res = s.Orchd(ctx, "exec", "box", "--", "/probe", "exit", "7")
		Expect(res.ExitCode).To(Equal(7), "%s", res)
		res = s.Orchd(ctx, "exec", "box", "--", "/no-such-binary")
		Expect(res.ExitCode).NotTo(BeZero(), "%s", res)
		Expect(res.Stderr).To(ContainSubstring("/no-such-binary"), "%s", res)

		By("kill -s TERM: the task ends and RESTART always brings a new one")
		res = s.Orchd(ctx, "kill", "-s", "TERM", "box")
		Expect(res.ExitCode).To(BeZero(), "%s", res)
		killed := s.EventuallyRow(ctx, "box", func(g Gomega, r framework.Row) {
			g.Expect(r.Restarts).To(BeNumerically(">=", 1), "restarts of box (%s, %s)", r.State, r.Message)
			g.Expect(r.State).To(Equal(contract.StateRunning))
			g.Expect(strings.ToLower(r.TaskStatus)).To(Equal("running"))
		})
		Expect(killed.ExitCode).To(HaveValue(Equal(128+15)), "box's last exit after SIGTERM")

		By("restart: a new task for box, side untouched")
		res = s.Orchd(ctx, "restart", "box")
		Expect(res.ExitCode).To(BeZero(), "%s", res)
		restarted := s.EventuallyState(ctx, "box", contract.StateRunning)
		Expect(restarted.Since).To(BeTemporally(">", killed.Since), "box was not started again")
		Expect(restarted.Restarts).To(BeZero(), "a restart starts a fresh supervisor")
		now, ok := framework.FindRow(s.Survey(ctx), "side")
		Expect(ok).To(BeTrue())
		Expect(now.Since).To(Equal(side.Since), "restart box touched side")
		Expect(now.Restarts).To(Equal(side.Restarts))
		_ = box

		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(4*time.Minute))
})

var _ = Describe("logs of a container", Label("containerd", "verbs", "logs"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("-t shows when each line of the task's stdout and stderr was written; --since keeps the later ones", func(ctx SpecContext) {
		s.WriteOrchfile(service(s.Image("probe"), "ticker", "tick 700ms"))
		s.Grow(ctx)
		s.EventuallyState(ctx, "ticker", contract.StateRunning)
		Eventually(ctx, func() string { return s.Logs(ctx, "ticker") }).Should(ContainSubstring("tick 3\n"))

		res := s.Orchd(ctx, "logs", "-t", "--no-log-prefix", "ticker")
		Expect(res.ExitCode).To(BeZero(), "%s", res)
		times := map[string]time.Time{}
		for _, line := range strings.Split(strings.TrimSuffix(res.Stdout, "\n"), "\n") {
			ts, text, _ := strings.Cut(line, " ")
			tm, err := time.Parse(time.RFC3339Nano, ts)
			Expect(err).NotTo(HaveOccurred(), "line %q of logs -t has no time first:\n%s", line, res.Stdout)
			if strings.HasPrefix(text, "probe: tick: ready") {
				text = "ready"
			}
			times[text] = tm
		}
		Expect(times).To(HaveKey("ready"), "the task's stderr line:\n%s", res.Stdout)
		Expect(times).To(HaveKey("tick 1"))
		Expect(times).To(HaveKey("tick 3"))
		Expect(times["tick 3"].Sub(times["tick 1"])).To(BeNumerically(">=", time.Second), "two 700ms ticks apart:\n%s", res.Stdout)

		By("--since the second tick: the first is left out")
		res = s.Orchd(ctx, "logs", "--no-log-prefix", "--since", times["tick 2"].Format(time.RFC3339Nano), "ticker")
		Expect(res.ExitCode).To(BeZero(), "%s", res)
		Expect(res.Stdout).To(HavePrefix("tick 2\ntick 3\n"))

		By("on disk the streams stay apart")
		raw, err := os.ReadFile(s.Layout.LogFile(s.Label("ticker")))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).To(ContainSubstring(" stderr F probe: tick: ready"))
		Expect(string(raw)).To(ContainSubstring(" stdout F tick 1\n"))
		By("the leaf's own messages are records of the log too (no relay stamps them)")
		Expect(string(raw)).To(ContainSubstring(" stderr F time="), "the leaf's slog lines:\n%s", raw)
		for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
			_, ok := logline.Parse([]byte(line))
			Expect(ok).To(BeTrue(), "line %q of the log is not a record:\n%s", line, raw)
		}

		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))
})
