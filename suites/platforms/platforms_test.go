package platforms

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/harness/settings"
	"github.com/orchd/orchd/inception"
)

var _ = Describe("the systemd platform under a real systemd", Label("vm", "slow", "platforms"), Ordered, ContinueOnFailure, func() {
	var res *inception.Result
	var reports string

	BeforeAll(func(ctx SpecContext) {
		_, err := exec.LookPath("qemu-system-x86_64")
		Expect(err).NotTo(HaveOccurred(), "the platforms suite boots a VM: apt-get install -y qemu-system-x86")
		// The inner suite's report files land beside the other suites'
		// when a report dir is set (CI), else in a temp dir checked below.
		reports = GinkgoT().TempDir()
		if dir := os.Getenv(settings.EnvReportDir); dir != "" {
			reports = filepath.Join(dir, "platforms-vm")
		}
		res, err = inception.Run(ctx, inception.Options{
			ReportDir:    reports,
			Init:         inception.InitSystemd,
			Suites:       []string{"platforms/inner"},
			Memory:       "2G",
			CPUs:         "2",
			Timeout:      35 * time.Minute,
			SuiteTimeout: 25 * time.Minute,
			Progress:     GinkgoWriter,
		})
		if res != nil {
			var b strings.Builder
			inception.PrintTable(&b, res)
			AddReportEntry("platforms", b.String())
			GinkgoWriter.Println(b.String())
		}
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(45*time.Minute))

	It("runs the platforms suite inside with every spec passing", func() {
		Expect(res.DriverDone).To(BeTrue(), "the driver never reported done")
		Expect(res.Suites).To(HaveLen(1))
		s := res.Suites[0]
		Expect(s.Suite).To(Equal("platforms/inner"))
		Expect(s.OK).To(BeTrue(), "failures %v\n%s (report %s)", s.Failures, s.Error, s.JSON)
		Expect(s.Passed).To(BeNumerically(">=", 13))
		Expect(s.Failed).To(BeZero())
		Expect(res.Passed()).To(BeTrue(), "driver: %s", res.Message)
	})

	It("writes the inner suite's report files", func() {
		for _, f := range []string{"platforms-inner.junit.xml", "platforms-inner.json", "junit.xml", inception.DriverFile} {
			Expect(filepath.Join(reports, f)).To(BeARegularFile())
		}
		env, _ := filepath.Glob(filepath.Join(reports, "platforms*-vm-*.env.json"))
		Expect(env).NotTo(BeEmpty(), "the framework's environment report (%s)", reports)
	})

	It("leaks nothing inside (containerd) or outside (qemu, supervisors, scratch dirs)", func() {
		Expect(res.InnerClean).To(BeTrue(), "inside: %s", res.InnerLeaks)
		Expect(res.OuterLeaks).To(BeEmpty())
	})
})
