package platforms

import (
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/inception"
)

var _ = Describe("the systemd platform under a real systemd", Label("vm", "slow", "platforms"), Ordered, ContinueOnFailure, func() {
	var res *inception.Result

	BeforeAll(func(ctx SpecContext) {
		_, err := exec.LookPath("qemu-system-x86_64")
		Expect(err).NotTo(HaveOccurred(), "the platforms suite boots a VM: apt-get install -y qemu-system-x86")
		res, err = inception.Run(ctx, inception.Options{
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
		Expect(s.Passed).To(BeNumerically(">=", 7))
		Expect(s.Failed).To(BeZero())
		Expect(res.Passed()).To(BeTrue(), "driver: %s", res.Message)
	})

	It("leaks nothing inside (containerd) or outside (qemu, supervisors, scratch dirs)", func() {
		Expect(res.InnerClean).To(BeTrue(), "inside: %s", res.InnerLeaks)
		Expect(res.OuterLeaks).To(BeEmpty())
	})
})
