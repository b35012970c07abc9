//go:build inception

package inner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/suites/framework"
)

var _ = Describe("orchd verbs on systemd", Label("platforms", "vm", "verbs"), Serial, func() {
	It("reloads through ExecReload: the running process gets the signal and is not restarted", Label("reload"), func(ctx SpecContext) {
		s := systemdSpec("bare")
		pidf := filepath.Join(s.Dir, "pid")
		s.WriteOrchfile(fmt.Sprintf("SERVICE r\nRUN echo $$ > %s; trap 'echo reloaded' HUP; while :; do sleep 0.2; done\nRELOAD kill -HUP $(cat %[1]s)\n", pidf))
		grow(ctx, s)
		before := s.EventuallyRow(ctx, "r", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		Eventually(ctx, func() ([]byte, error) { return os.ReadFile(pidf) }).Should(Not(BeEmpty()))
		Expect(s.Logs(ctx, "r")).NotTo(ContainSubstring("reloaded"))
		res := s.Orchd(ctx, "reload", "r")
		Expect(res.ExitCode).To(BeZero(), "%s", res)
		// The reload job ends when ExecReload= has run; the trap fires
		// once the shell's current sleep ends.
		Eventually(ctx, func() string { return s.Logs(ctx, "r") }).Should(ContainSubstring("reloaded"))
		after := s.Survey(ctx)[0]
		Expect(after.Pid).To(Equal(before.Pid), "the reload restarted the service")
		Expect(show(ctx, unit(s, "r"), "NRestarts", "ActiveState")).To(Equal(map[string]string{"NRestarts": "0", "ActiveState": "active"}))
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(6*time.Minute))

	It("fells one service and leaves the others running, and `logs -f` of a felled service ends", func(ctx SpecContext) {
		s := systemdSpec("bare")
		s.WriteOrchfile("SERVICE a\nRUN echo a up; exec sleep 1000\n\nSERVICE b\nRUN exec sleep 1000\n")
		grow(ctx, s)
		s.EventuallyRow(ctx, "a", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		b := s.EventuallyRow(ctx, "b", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		followed := make(chan string, 1)
		go func() {
			defer GinkgoRecover()
			// Returns only once a is felled (or the spec times out).
			res, err := s.CLI.Run(ctx, "logs", "-f", "--no-log-prefix", "a")
			Expect(err).NotTo(HaveOccurred())
			Expect(res.ExitCode).To(BeZero(), "%s", res)
			followed <- res.Stdout
		}()
		Consistently(followed).WithTimeout(2*time.Second).ShouldNot(Receive(), "logs -f ended while a was running")
		res := s.Orchd(ctx, "fell", "a")
		Expect(res.ExitCode).To(BeZero(), "%s", res)
		Eventually(ctx, followed).WithTimeout(framework.Scaled(time.Minute)).Should(Receive(ContainSubstring("a up")), "logs -f of the felled service")
		rows := s.Survey(ctx)
		Expect(rows).To(HaveLen(1), "survey after fell a: %+v", rows)
		Expect(rows[0].Name).To(Equal("b"))
		Expect(rows[0].State).To(Equal("running"))
		Expect(rows[0].Pid).To(Equal(b.Pid), "b was restarted by fell a")
		Expect(show(ctx, unit(s, "b"), "ActiveState")["ActiveState"]).To(Equal("active"))
		Expect(show(ctx, unit(s, "a"), "LoadState")["LoadState"]).To(Equal("not-found"))
		_, err := os.Stat(filepath.Join("/etc/systemd/system", unit(s, "a")))
		Expect(err).To(MatchError(os.ErrNotExist))
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(6*time.Minute))

	It("puts LIMIT_NOFILE and LIMIT_NPROC on the process and IO_WEIGHT on the unit's cgroup", func(ctx SpecContext) {
		s := systemdSpec("bare")
		s.WriteOrchfile("SERVICE lim\nRUN exec sleep 1000\nLIMIT_NOFILE 1234\nLIMIT_NPROC 321\nIO_WEIGHT 300\n")
		grow(ctx, s)
		row := s.EventuallyRow(ctx, "lim", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", row.Pid))
		Expect(err).NotTo(HaveOccurred())
		Expect(limitOf(string(limits), "Max open files")).To(Equal([]string{"1234", "1234"}))
		Expect(limitOf(string(limits), "Max processes")).To(Equal([]string{"321", "321"}))
		cg := show(ctx, unit(s, "lim"), "ControlGroup")["ControlGroup"]
		Expect(cg).NotTo(BeEmpty())
		w, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", cg, "io.weight"))
		Expect(err).NotTo(HaveOccurred(), "the unit's cgroup has no io.weight (io controller not enabled for it)")
		Expect(strings.TrimSpace(string(w))).To(Equal("default 300"))
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(6*time.Minute))
})

// limitOf returns the soft and hard value of one /proc/<pid>/limits row.
func limitOf(limits, name string) []string {
	for _, l := range strings.Split(limits, "\n") {
		if rest, ok := strings.CutPrefix(l, name); ok {
			f := strings.Fields(rest)
			if len(f) >= 2 {
				return f[:2]
			}
		}
	}
	return nil
}
