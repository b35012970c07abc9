//go:build inception

package inner

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/inception"
	"github.com/orchd/orchd/orchd/spec"
	"github.com/orchd/orchd/suites/framework"
)

// expected reads a value the driver passes from the outer Orchfile; outside
// the VM it is missing and the spec fails with how to run it.
func expected(name string) string {
	GinkgoHelper()
	v := os.Getenv(name)
	Expect(v).NotTo(BeEmpty(), "%s is unset: these checks run inside the inception VM; run them with `go run ./cmd/orchd-harness inception`", name)
	return v
}

func memTotalKiB() int64 {
	GinkgoHelper()
	f, err := os.Open("/proc/meminfo")
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			Expect(err).NotTo(HaveOccurred())
			return n
		}
	}
	Fail("no MemTotal in /proc/meminfo")
	return 0
}

var _ = Describe("inside the inception VM", Label("vm", "inner"), func() {
	It("has the MEMORY of the outer Orchfile", func() {
		want, err := spec.ParseSize(expected(inception.EnvMemory))
		Expect(err).NotTo(HaveOccurred())
		got := memTotalKiB() * 1024
		// MemTotal excludes what the kernel reserves for itself.
		Expect(got).To(BeNumerically("<=", want), "MemTotal above the VM's memory")
		Expect(got).To(BeNumerically(">=", want*8/10), "MemTotal %d MiB is far below MEMORY %d MiB", got>>20, want>>20)
	})

	It("has the CPUS of the outer Orchfile as vCPUs (nproc)", func() {
		cpus, err := strconv.ParseFloat(expected(inception.EnvCPUs), 64)
		Expect(err).NotTo(HaveOccurred())
		Expect(runtime.NumCPU()).To(Equal(int(math.Ceil(cpus))))
	})

	It("mounts the tools VOLUME over virtio-9p", func() {
		b, err := os.ReadFile("/proc/self/mountinfo")
		Expect(err).NotTo(HaveOccurred())
		var fstype string
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			for i, x := range f {
				if x == "-" && len(f) > 4 && f[4] == inception.ToolsDir && i+1 < len(f) {
					fstype = f[i+1]
				}
			}
		}
		Expect(fstype).To(Equal("9p"), "filesystem at %s", inception.ToolsDir)
		Expect(inception.ToolsDir + "/orchd").To(BeAnExistingFile())
		Expect(inception.ManifestPath).To(BeAnExistingFile())
	})

	It("runs on the unified cgroup hierarchy (v2)", func() {
		var st unix.Statfs_t
		Expect(unix.Statfs("/sys/fs/cgroup", &st)).To(Succeed())
		Expect(int64(st.Type)).To(Equal(int64(unix.CGROUP2_SUPER_MAGIC)), "/sys/fs/cgroup is not cgroup2")
		b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Fields(string(b))).To(ContainElement("memory"))
	})

	Context("a container under the inner containerd", Label("containerd"), func() {
		var s *framework.Spec
		BeforeEach(func() { s = fw.NewSpec() })

		It("gets MEMORY as memory.max and CPUS as cpu.max", func(ctx SpecContext) {
			vol, out := s.ProbeOut("mem")
			s.WriteOrchfile(fmt.Sprintf("SERVICE mem\nFROM %s\nMEMORY 64M\nCPUS 0.5\nCMD report %s --then sleep forever\n%sTIMEOUT_STOP 2s\n", s.Image("probe"), out, vol))
			s.Grow(ctx)
			rep := s.ProbeReport(ctx, "mem")
			Expect(rep.Cgroup.Version).To(Equal(2), "cgroup version seen by the container")
			Expect(rep.Cgroup.MemoryLimitBytes).To(HaveValue(Equal(int64(64<<20))), "memory.max")
			Expect(rep.Cgroup.CPUQuotaUS).To(HaveValue(Equal(int64(50000))), "cpu.max quota")
			Expect(rep.Cgroup.CPUPeriodUS).To(HaveValue(Equal(int64(100000))), "cpu.max period")
			s.Fell(ctx)
			// fell returns only when the shims are gone: no grace period here.
			s.ExpectNoLeaks(ctx)
		}, framework.SpecDeadline(4*time.Minute))
	})
})
