package specalign

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/fixtures/probe/report"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

const svc = "align"

// keep is the tail of a report command that keeps the container running.
const keep = "--then sleep forever"

// alignCase prepares one directive: the Orchfile lines after SERVICE (FROM
// included) and the check of the probe's report.
type alignCase func(ctx SpecContext, s *framework.Spec) (lines string, check func(r *report.Report))

// probeFrom is "FROM <probe>" plus a CMD running the report (cmd starts
// with "report") and the VOLUME the report file is written to.
func probeFrom(s *framework.Spec, cmd string) string {
	return probeImage(s, images.Probe, cmd)
}

// probeImage is probeFrom with another fixture image.
func probeImage(s *framework.Spec, image, cmd string) string {
	GinkgoHelper()
	rest, ok := strings.CutPrefix(cmd, "report")
	Expect(ok).To(BeTrue(), "a probe CMD starts with report: %q", cmd)
	vol, out := s.ProbeOut(svc)
	return fmt.Sprintf("FROM %s\nCMD report %s%s\n%s", s.Image(image), out, rest, vol)
}

// hostCgroupVersion is 2 on a unified-only host, else 1.
func hostCgroupVersion() int {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return 2
	}
	return 1
}

// expectCgroupVersion asserts the limits were read from the host's kind of
// cgroup files (v1 per-controller dirs, v2 the unified dir).
func expectCgroupVersion(cg *report.Cgroup, controllerV1 string) {
	GinkgoHelper()
	Expect(cg.Version).To(Equal(hostCgroupVersion()), "cgroup version of the container")
	if cg.Version == 1 {
		Expect(cg.Dirs).To(HaveKey(controllerV1), "v1 %s controller dir", controllerV1)
	} else {
		Expect(cg.Dirs).To(HaveKey("unified"))
	}
}

// containerCgroup is the container's cgroup as the probe read it from
// inside or, where the container's kernel is not the host's (the documented
// deviation runsc-cgroups-from-host), as the host sees the task's cgroup.
func containerCgroup(ctx context.Context, s *framework.Spec, r *report.Report) *report.Cgroup {
	GinkgoHelper()
	if fw.Deviates("runsc-cgroups-from-host") {
		cg := s.HostCgroup(ctx, svc)
		return &cg
	}
	return &r.Cgroup
}

func freePort() int {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// expectHTTP polls addr until the probe's http server answers "ok".
func expectHTTP(ctx SpecContext, addr string) {
	GinkgoHelper()
	hc := &http.Client{Timeout: 2 * time.Second}
	Eventually(ctx, func(g Gomega) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		g.Expect(err).NotTo(HaveOccurred())
		resp, err := hc.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
		g.Expect(strings.TrimSpace(string(body))).To(Equal("ok"))
	}).WithTimeout(framework.Scaled(60*time.Second)).Should(Succeed(), "GET http://%s/", addr)
}

// expectedIOWeight is what the weight file named file holds for an OCI
// blkio weight w (IO_WEIGHT's 10..1000 scale, the runtime-spec's
// linux.resources.blockIO.weight). blkio.weight, blkio.bfq.weight and
// io.bfq.weight take it as is; cgroup v2's io.weight has a 1..10000 scale,
// onto which runc (and crun) map it as 1 + (w-10)*9999/990: 300 -> 2930.
func expectedIOWeight(file string, w int64) int64 {
	if file == "io.weight" {
		return 1 + (w-10)*9999/990
	}
	return w
}

// otherLoopback is a local address that is not 127.0.0.1: a port published
// on 127.0.0.1 only must refuse connections there.
const otherLoopback = "127.0.0.2"

// expectRefused expects a TCP connection to addr to be refused.
func expectRefused(addr string) {
	GinkgoHelper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	Expect(err).To(MatchError(syscall.ECONNREFUSED), "a connection to %s must be refused", addr)
}

var _ = Describe("spec alignment", Label("containerd"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	DescribeTable("a directive reaches the container",
		func(ctx SpecContext, c alignCase) {
			lines, check := c(ctx, s)
			s.WriteOrchfile(fmt.Sprintf("SERVICE %s\n%sTIMEOUT_STOP 2s\n", svc, lines))
			s.Grow(ctx)
			s.EventuallyState(ctx, svc, contract.StateRunning)
			r := s.ProbeReport(ctx, svc)
			check(r)
			s.Fell(ctx)
			s.ExpectNoLeaks(ctx)
		},
		Entry("ENV (values with spaces; the image's PATH is kept)", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "ENV GREETING=hello world\nENV EMPTY=\nENV SECRET_TOKEN=s3cr3t=x\n", func(r *report.Report) {
				Expect(r.Env).To(HaveKeyWithValue("GREETING", "hello world"))
				Expect(r.Env).To(HaveKeyWithValue("EMPTY", ""))
				Expect(r.Env).To(HaveKeyWithValue("SECRET_TOKEN", "s3cr3t=x"))
				Expect(r.Env).To(HaveKeyWithValue("PATH", images.DefaultPath))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("ENV_FILE (later files win, ENV wins over ENV_FILE)", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			s.WriteFile("a.env", "# first file\nA=from-a\n\nB=from-a\nC=from-a\n")
			s.WriteFile("b.env", "B=from-b\nC=from-b\n")
			return probeFrom(s, "report "+keep) + "ENV_FILE ${ORCH_PROJECT}/a.env\nENV_FILE ${ORCH_PROJECT}/b.env\nENV C=from-env\n", func(r *report.Report) {
				Expect(r.Env).To(HaveKeyWithValue("A", "from-a"))
				Expect(r.Env).To(HaveKeyWithValue("B", "from-b"))
				Expect(r.Env).To(HaveKeyWithValue("C", "from-env"))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("CMD (replaces the image's Cmd, keeps its Entrypoint)", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			_, out := s.ProbeOut(svc)
			return probeFrom(s, "report --then sleep 3600"), func(r *report.Report) {
				Expect(r.Args).To(Equal(append(append([]string{"/probe", "report"}, strings.Fields(out)...), "--then", "sleep", "3600")))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("ENTRYPOINT (with CMD as its arguments)", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			vol, out := s.ProbeOut(svc)
			return fmt.Sprintf("FROM %s\nENTRYPOINT /probe report\nCMD %s --then sleep forever\n%s", s.Image(images.Probe), out, vol), func(r *report.Report) {
				Expect(r.Args).To(Equal(append(append([]string{"/probe", "report"}, strings.Fields(out)...), "--then", "sleep", "forever")))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("WORKDIR", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "WORKDIR /tmp\n", func(r *report.Report) {
				Expect(r.Cwd).To(Equal("/tmp"))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("VOLUME host path (files visible both ways)", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			host := s.WriteFile("shared/host.txt", "from the host\n")
			dir := filepath.Dir(host)
			Expect(os.Chmod(dir, 0o755)).To(Succeed())
			return probeFrom(s, "report --stat /shared/host.txt --out /shared/report.json "+keep) + "VOLUME ${ORCH_PROJECT}/shared:/shared\n", func(r *report.Report) {
				m, ok := r.MountAt("/shared")
				Expect(ok).To(BeTrue(), "no mount at /shared")
				Expect(m.HasOption("rw")).To(BeTrue(), "mount options %v", m.Options)
				Expect(r.Paths).To(HaveKeyWithValue("/shared/host.txt", HaveField("Size", BeEquivalentTo(len("from the host\n")))))
				b, err := os.ReadFile(filepath.Join(dir, "report.json"))
				Expect(err).NotTo(HaveOccurred(), "the container's file is visible on the host")
				_, err = report.Parse(b)
				Expect(err).NotTo(HaveOccurred())
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("VOLUME named (lives under the data dir, files visible both ways)", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			vol := contract.NamedVolume(s.DataDir, s.Namespace, "appdata")
			Expect(os.MkdirAll(vol, 0o700)).To(Succeed())
			Expect(os.WriteFile(filepath.Join(vol, "seed.txt"), []byte("seeded"), 0o644)).To(Succeed())
			return probeFrom(s, "report --stat /data/seed.txt --out /data/report.json "+keep) + "VOLUME appdata:/data\n", func(r *report.Report) {
				_, ok := r.MountAt("/data")
				Expect(ok).To(BeTrue(), "no mount at /data")
				Expect(r.Paths).To(HaveKeyWithValue("/data/seed.txt", HaveField("Size", BeEquivalentTo(len("seeded")))), "the host's file in the container")
				Expect(filepath.Join(vol, "report.json")).To(BeAnExistingFile(), "the container's file on the host")
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("MEMORY", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "MEMORY 96M\n", func(r *report.Report) {
				cg := containerCgroup(ctx, s, r)
				expectCgroupVersion(cg, "memory")
				Expect(cg.MemoryLimitBytes).To(HaveValue(Equal(int64(96 << 20))))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("CPUS", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "CPUS 0.5\n", func(r *report.Report) {
				cg := containerCgroup(ctx, s, r)
				expectCgroupVersion(cg, "cpu")
				Expect(cg.CPUQuotaUS).To(HaveValue(Equal(int64(50000))))
				Expect(cg.CPUPeriodUS).To(HaveValue(Equal(int64(100000))))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("CPU_QUOTA (above 100%)", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "CPU_QUOTA 150%\n", func(r *report.Report) {
				cg := containerCgroup(ctx, s, r)
				expectCgroupVersion(cg, "cpu")
				Expect(cg.CPUQuotaUS).To(HaveValue(Equal(int64(150000))))
				Expect(cg.CPUPeriodUS).To(HaveValue(Equal(int64(100000))))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("TASKS_MAX", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "TASKS_MAX 64\n", func(r *report.Report) {
				cg := containerCgroup(ctx, s, r)
				expectCgroupVersion(cg, "pids")
				Expect(cg.PidsMax).To(HaveValue(Equal(int64(64))))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("LIMIT_NOFILE", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "LIMIT_NOFILE 1024\n", func(r *report.Report) {
				Expect(r.Rlimits).To(HaveKeyWithValue("NOFILE", report.Rlimit{Soft: 1024, Hard: 1024}))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("LIMIT_NPROC (rlimit and pids limit)", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "LIMIT_NPROC 77\n", func(r *report.Report) {
				cg := containerCgroup(ctx, s, r)
				Expect(r.Rlimits).To(HaveKeyWithValue("NPROC", report.Rlimit{Soft: 77, Hard: 77}))
				Expect(cg.PidsMax).To(HaveValue(Equal(int64(77))))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("IO_WEIGHT (read from inside: 300 on the blkio scale, 2930 in v2 io.weight)", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "IO_WEIGHT 300\n", func(r *report.Report) {
				cg := containerCgroup(ctx, s, r)
				Expect(cg.Path).NotTo(BeEmpty(), "the container's cgroup path")
				if fw.Deviates("io-weight-no-scheduler") {
					// No weight file, or (a BFQ host under runsc) the kernel's default: never 300.
					Expect(cg.IOWeight).To(Or(BeNil(), HaveValue(Not(Equal(expectedIOWeight(cg.IOWeightFile, 300))))), "IO_WEIGHT was not applied, yet %s holds it", cg.IOWeightFile)
					Expect(logsMention(s, "IO_WEIGHT not applied")).To(BeTrue(), "no log line under %s says IO_WEIGHT was not applied", s.Layout.LogDir())
					return
				}
				Expect(cg.IOWeight).NotTo(BeNil(), "the kernel offers a weight here, but the container sees no weight file (cgroup dirs %v)", cg.Dirs)
				By(fmt.Sprintf("the container reads %s = %d", cg.IOWeightFile, *cg.IOWeight))
				Expect(*cg.IOWeight).To(Equal(expectedIOWeight(cg.IOWeightFile, 300)), "weight file %s", cg.IOWeightFile)
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("hostname is the service name", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep), func(r *report.Report) {
				Expect(r.Hostname).To(Equal(svc))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("host network namespace", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			if fw.Deviates("runsc-netns-is-the-sandboxs") {
				// No PUBLISH: only the host's network makes the port answer on the host.
				p := freePort()
				return probeFrom(s, fmt.Sprintf("report --then http %d", p)), func(*report.Report) {
					expectHTTP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
				}
			}
			link, err := os.Readlink("/proc/self/ns/net")
			Expect(err).NotTo(HaveOccurred())
			ino, err := report.ParseNSLink(link)
			Expect(err).NotTo(HaveOccurred())
			return probeFrom(s, "report "+keep), func(r *report.Report) {
				Expect(r.NetNSInode).To(Equal(ino), "container netns %s, test netns %s", r.NetNS, link)
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("PUBLISH same host and container port", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			p := freePort()
			return probeFrom(s, fmt.Sprintf("report --then http %d", p)) + fmt.Sprintf("PUBLISH %d:%d\n", p, p), func(*report.Report) {
				expectHTTP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("PUBLISH host port != container port (relayed)", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			host, ctr := freePort(), freePort()
			return probeFrom(s, fmt.Sprintf("report --then http %d", ctr)) + fmt.Sprintf("PUBLISH %d:%d\n", host, ctr), func(*report.Report) {
				expectHTTP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(host)))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("PUBLISH with a host address (relayed on that address only)", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			host, ctr := freePort(), freePort()
			return probeFrom(s, fmt.Sprintf("report --then http %d", ctr)) + fmt.Sprintf("PUBLISH 127.0.0.1:%d:%d\n", host, ctr), func(*report.Report) {
				expectHTTP(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(host)))
				expectRefused(net.JoinHostPort(otherLoopback, strconv.Itoa(host)))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("image USER by name (probe-user: app = 1234:1234)", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeImage(s, images.ProbeUser, "report "+keep), func(r *report.Report) {
				Expect(r.UID).To(Equal(images.AppUID))
				Expect(r.GID).To(Equal(images.AppGID))
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("image layers with whiteouts and opaque dirs unpack correctly", alignCase(func(_ SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			cmd := "report"
			for _, p := range append(append([]string{}, images.LayersPresent...), images.LayersAbsent...) {
				cmd += " --stat " + p
			}
			return probeImage(s, images.ProbeLayers, cmd+" "+keep), func(r *report.Report) {
				for _, p := range images.LayersPresent {
					Expect(r.Paths).To(HaveKeyWithValue(p, HaveField("Exists", BeTrue())), p)
				}
				for _, p := range images.LayersAbsent {
					Expect(r.Paths).To(HaveKeyWithValue(p, HaveField("Exists", BeFalse())), p)
				}
			}
		}), framework.SpecDeadline(3*time.Minute)),
		Entry("cgroup: the container has its own cgroup of the host's version", alignCase(func(ctx SpecContext, s *framework.Spec) (string, func(*report.Report)) {
			return probeFrom(s, "report "+keep) + "MEMORY 128M\nTASKS_MAX 100\n", func(r *report.Report) {
				cg := containerCgroup(ctx, s, r)
				expectCgroupVersion(cg, "memory")
				if cg.Version == 1 {
					// No cgroup namespace on v1: the path names the namespace and container.
					Expect(cg.Path).To(HavePrefix("/"+s.Namespace+"/"), "cgroup path")
				}
				Expect(cg.MemoryLimitBytes).To(HaveValue(Equal(int64(128 << 20))))
				Expect(cg.PidsMax).To(HaveValue(Equal(int64(100))))
				Expect(cg.CPUQuotaUS).To(Or(BeNil(), HaveValue(Equal(report.Unlimited))), "no CPU limit was asked for")
			}
		}), framework.SpecDeadline(3*time.Minute)),
	)

	It("refuses PUBLISH 127.0.0.1:P:P: a host-network container cannot be held to one address", func(ctx SpecContext) {
		p := freePort()
		s.WriteOrchfile(fmt.Sprintf("SERVICE %s\n%sPUBLISH 127.0.0.1:%d:%d\nTIMEOUT_STOP 2s\n", svc, probeFrom(s, fmt.Sprintf("report --then http %d", p)), p, p))
		res := s.Orchd(ctx, "grow")
		Expect(res.ExitCode).NotTo(BeZero(), "grow must refuse an address it cannot honor:\n%s", res)
		Expect(res.Stderr).To(ContainSubstring(fmt.Sprintf("PUBLISH 127.0.0.1:%d:%d", p, p)), "the error names the directive")
		Expect(res.Stderr).To(ContainSubstring("publish another host port"), "the error names the fix")
		By("nothing listens on the port, on any address")
		expectRefused(net.JoinHostPort(otherLoopback, strconv.Itoa(p)))
		expectRefused(net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(3*time.Minute))
})

// logsMention reports whether any orchd log of the spec contains text.
func logsMention(s *framework.Spec, text string) bool {
	files, _ := filepath.Glob(filepath.Join(s.Layout.LogDir(), "*"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && strings.Contains(string(b), text) {
			return true
		}
	}
	return false
}
