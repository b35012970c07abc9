package lifecycle

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

var _ = Describe("RELOAD", Label("host"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("runs RELOAD once in the service's environment, without a restart; a service without RELOAD is an error", func(ctx SpecContext) {
		work := filepath.Join(s.ProjectDir, "work")
		Expect(os.MkdirAll(work, 0o700)).To(Succeed())
		out := filepath.Join(s.Dir, "reloads")
		s.WriteOrchfile(fmt.Sprintf("SERVICE web\nRUN sleep 1000\nWORKDIR work\nENV GREETING=hello\n"+
			"RELOAD echo \"$GREETING $(pwd)\" >> %s\nTIMEOUT_STOP 2s\n\n"+
			"SERVICE plain\nRUN sleep 1000\nTIMEOUT_STOP 2s\n", out))
		s.Grow(ctx)
		running := func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal(contract.StateRunning)) }
		before := s.EventuallyRow(ctx, "web", running)
		s.EventuallyRow(ctx, "plain", running)

		res := s.Orchd(ctx, "reload", "web")
		Expect(res.ExitCode).To(BeZero(), "%s", res)
		b, err := os.ReadFile(out)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(string(b))).To(Equal("hello "+work), "RELOAD ran once with ENV and WORKDIR")
		after, _ := framework.FindRow(s.Survey(ctx), "web")
		Expect(after.State).To(Equal(contract.StateRunning))
		Expect(after.Restarts).To(BeZero())
		Expect(after.Pid).To(Equal(before.Pid), "the service was not restarted")

		res = s.Orchd(ctx, "reload", "plain")
		Expect(res.ExitCode).NotTo(BeZero(), "%s", res)
		Expect(res.Stderr).To(ContainSubstring("service plain has no RELOAD command"))
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(2*time.Minute))
})
