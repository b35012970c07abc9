package inception

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/inception"
)

var _ = Describe("inception", Label("vm", "slow"), Ordered, ContinueOnFailure, func() {
	var res *inception.Result
	var reports string

	BeforeAll(func(ctx SpecContext) {
		_, err := exec.LookPath("qemu-system-x86_64")
		Expect(err).NotTo(HaveOccurred(), "the inception suite boots a VM: apt-get install -y qemu-system-x86")
		reports = GinkgoT().TempDir()
		// CI runs a subset of `orchd-harness inception`'s default (the in-VM
		// checks and oneshot): the full default (all five core suites) takes
		// over 30 minutes under TCG on a loaded 2-core host, beyond CI's budget.
		res, err = inception.Run(ctx, inception.Options{
			Suites:      ciSuites,
			Memory:      "2G",
			CPUs:        "2",
			LabelFilter: inception.DefaultLabelFilter,
			ReportDir:   reports,
			Progress:    GinkgoWriter,
		})
		if res != nil {
			var b strings.Builder
			inception.PrintTable(&b, res)
			AddReportEntry("inception", b.String())
			GinkgoWriter.Println(b.String())
		}
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(45*time.Minute))

	It("finishes the in-VM driver with a passing verdict read from the report files", func() {
		Expect(res.DriverDone).To(BeTrue(), "no %s in %s: %s", inception.DriverFile, reports, res.Message)
		Expect(res.DriverPass).To(BeTrue(), "driver: %s", res.Message)
		Expect(res.Passed()).To(BeTrue())
	})

	It("writes JUnit, JSON and environment reports for every suite it ran inside the VM", func() {
		Expect(res.Suites).To(HaveLen(len(ciSuites)))
		passed := 0
		for _, s := range res.Suites {
			Expect(s.OK).To(BeTrue(), "%s: %s %v (report %s)", s.Suite, s.Error, s.Failures, s.JSON)
			Expect(s.JUnit).To(BeAnExistingFile())
			passed += s.Passed
			env, err := filepath.Glob(filepath.Join(reports, strings.ReplaceAll(s.Suite, "/", "-")+"-vm-v2-*-runc.env.json"))
			Expect(err).NotTo(HaveOccurred())
			Expect(env).To(HaveLen(1), "the %s environment report (where=vm) in %s", s.Suite, reports)
		}
		Expect(passed).To(BeNumerically(">=", 10)) // inner 5, oneshot 6
		for _, f := range []string{"junit.xml", "summary.json", inception.LeaksFile, inception.DriverFile} {
			Expect(filepath.Join(reports, f)).To(BeAnExistingFile())
		}
		b, err := os.ReadFile(filepath.Join(reports, "junit.xml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(ContainSubstring("testsuite"))
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

	It("fits in fifteen minutes of VM run", func() {
		Expect(res.RunTime).To(BeNumerically("<", 15*time.Minute))
	})
})

// ciSuites are the suites CI runs inside the VM.
var ciSuites = []string{"inception/inner", "oneshot"}

var _ = Describe("inception defaults", func() {
	It("run the in-VM checks and the five core suites", func() {
		Expect(inception.DefaultSuites()).To(ConsistOf("inception/inner", "fanout", "oneshot", "crashrestart", "specalign", "leak"))
	})
})
