package inception

import (
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/inception"
)

var _ = Describe("inception", Label("vm", "slow"), Ordered, ContinueOnFailure, func() {
	var res *inception.Result

	BeforeAll(func(ctx SpecContext) {
		_, err := exec.LookPath("qemu-system-x86_64")
		Expect(err).NotTo(HaveOccurred(), "the inception suite boots a VM: apt-get install -y qemu-system-x86")
		res, err = inception.Run(ctx, inception.Options{
			Memory:   "2G",
			CPUs:     "2",
			Timeout:  10 * time.Minute,
			Progress: GinkgoWriter,
		})
		if res != nil {
			var b strings.Builder
			inception.PrintTable(&b, res)
			AddReportEntry("inception", b.String())
			GinkgoWriter.Println(b.String())
		}
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(20*time.Minute))

	It("finishes the in-VM driver with a passing verdict", func() {
		Expect(res.DriverDone).To(BeTrue(), "the driver never reported done")
		Expect(res.DriverPass).To(BeTrue(), "driver: %s", res.Message)
		Expect(res.Passed()).To(BeTrue())
	})

	It("passes the inner suite, with every check run", func() {
		Expect(res.Suites).To(HaveLen(1))
		s := res.Suites[0]
		Expect(s.Name).To(Equal("inception/inner"))
		Expect(s.Passed).To(BeTrue(), "failures %v\n%s", s.Failures, s.Tail)
		// MEMORY, CPUS, the 9p VOLUME, cgroup v2, and a container's memory.max.
		Expect(s.Specs).To(BeNumerically(">=", 5))
		Expect(s.Failed).To(BeZero())
	})

	It("gives the VM the Orchfile's MEMORY and CPUS, the tools VOLUME and cgroup v2", func() {
		Expect(res.Env).NotTo(BeNil(), "no guest report")
		Expect(res.Env.CPUs).To(Equal(2))
		Expect(res.Env.MemTotalKiB).To(BeNumerically("<=", 2<<20))
		Expect(res.Env.MemTotalKiB).To(BeNumerically(">=", (2<<20)*8/10))
		Expect(res.Env.ToolsFSType).To(Equal("9p"))
		Expect(res.Env.CgroupMode).To(Equal("v2"))
		Expect(res.Env.Kernel).NotTo(BeEmpty())
		Expect(res.Env.ContainerdVersion).NotTo(BeEmpty())
	})

	It("leaks nothing inside (containerd) or outside (qemu, supervisors, scratch dirs)", func() {
		Expect(res.InnerClean).To(BeTrue(), "inside: %s", res.InnerLeaks)
		Expect(res.OuterLeaks).To(BeEmpty())
	})

	It("fits in ten minutes", func() {
		Expect(res.StageTime + res.RunTime).To(BeNumerically("<", 10*time.Minute))
	})
})
