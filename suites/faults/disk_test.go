package faults

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

// mountTmpfs mounts a tmpfs of size bytes over dir until the spec ends
// (unmounted before the framework's cleanup, which registered earlier).
func mountTmpfs(dir string, size int) {
	GinkgoHelper()
	Expect(syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size))).To(Succeed(), "mount tmpfs on %s", dir)
	DeferCleanup(func() {
		Expect(syscall.Unmount(dir, syscall.MNT_DETACH)).To(Succeed(), "unmount %s", dir)
	})
}

// fill writes a file into dir until the file system is full.
func fill(dir string) string {
	GinkgoHelper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			Expect(errors.Is(err, syscall.ENOSPC)).To(BeTrue(), "fill %s: %v", dir, err)
			return p
		}
	}
}

var _ = Describe("a state dir that cannot be written", Serial, Label("disk"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	orchfile := func() string {
		return fmt.Sprintf("SERVICE web\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 2s\n\nSERVICE host\nRUN exec sleep %s\nTIMEOUT_STOP 2s\n", s.Image("probe"), marker())
	}

	It("read-only: grow fails clearly naming the state dir, starts nothing; works once writable", func(ctx SpecContext) {
		s.WriteOrchfile(orchfile())
		mountTmpfs(s.StateDir, 1<<20)
		Expect(syscall.Mount("", s.StateDir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, "")).To(Succeed())

		res := s.Orchd(ctx, "grow")
		Expect(res.ExitCode).NotTo(BeZero(), "grow on a read-only state dir:\n%s", res)
		Expect(res.Stderr).To(ContainSubstring(s.StateDir))
		Expect(res.Stderr).To(ContainSubstring("read-only file system"))
		Expect(orchdProcs(s)).To(BeEmpty())
		s.ExpectNoLeaks(ctx)

		By("remount read-write: grow works")
		Expect(syscall.Mount("", s.StateDir, "", syscall.MS_REMOUNT, "size=1048576,mode=0700")).To(Succeed())
		s.Grow(ctx)
		s.EventuallyState(ctx, "web", contract.StateRunning)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(4*time.Minute))

	It("full: grow fails clearly, no status file is corrupt, nothing leaks; works once space is freed", func(ctx SpecContext) {
		s.WriteOrchfile(orchfile())
		mountTmpfs(s.StateDir, 256<<10)
		filler := fill(s.StateDir)

		res := s.Orchd(ctx, "grow")
		Expect(res.ExitCode).NotTo(BeZero(), "grow on a full state dir:\n%s", res)
		Expect(res.Stderr).To(ContainSubstring("no space left on device"))
		Expect(res.Stderr).To(ContainSubstring(s.StateDir))
		expectStatusFilesParse(s.StateDir)
		Eventually(ctx, func() []proc { return orchdProcs(s) }).WithTimeout(framework.Scaled(30*time.Second)).Should(BeEmpty(), "a failed grow leaves no supervisor")

		By("free the space: grow works, status files parse")
		Expect(os.Remove(filler)).To(Succeed())
		s.Grow(ctx)
		s.EventuallyState(ctx, "web", contract.StateRunning)
		expectStatusFilesParse(s.StateDir)
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(4*time.Minute))

	It("fills up while services run: supervisors keep their status files whole, fell still cleans up", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE flap\nFROM %s\nCMD exit 1\nRESTART always\nRESTART_DELAY 1s\nSTART_LIMIT_BURST 1000\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		mountTmpfs(s.StateDir, 2<<20)
		s.Grow(ctx)
		s.EventuallyRow(ctx, "flap", func(g Gomega, r framework.Row) { g.Expect(r.Restarts).To(BeNumerically(">=", 1)) })
		fill(s.StateDir)
		// Status writes now fail mid-flap; each attempt must leave the old file or a whole new one.
		Consistently(ctx, func(g Gomega) { statusFilesParse(g, s.StateDir) }).WithTimeout(5 * time.Second).Should(Succeed())
		s.Fell(ctx)
		s.ExpectNoLeaks(ctx)
		expectStatusFilesParse(s.StateDir)
	}, framework.SpecDeadline(4*time.Minute))
})
