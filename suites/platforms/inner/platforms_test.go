//go:build inception

package inner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/platform/systemd"
	"github.com/orchd/orchd/suites/framework"
)

// systemdSpec is a framework spec whose orchd talks to the system manager.
func systemdSpec(runtime string) *framework.Spec {
	GinkgoHelper()
	b, err := os.ReadFile("/proc/1/comm")
	Expect(err).NotTo(HaveOccurred())
	Expect(strings.TrimSpace(string(b))).To(Equal("systemd"),
		"the platforms suite needs systemd as PID 1: run it with `go run ./cmd/orchd-harness inception --init systemd --suites platforms/inner`")
	s := fw.NewSpec()
	s.CLI.Platform, s.CLI.Runtime = "systemd", runtime
	s.CLI.Env = append(s.CLI.Env, "ORCH_SCOPE=system")
	return s
}

// grow runs `orchd grow`; on failure the message carries what systemd
// says about the namespace's units.
func grow(ctx context.Context, s *framework.Spec) {
	GinkgoHelper()
	res := s.Orchd(ctx, "grow")
	if res.ExitCode != 0 {
		out, _ := exec.CommandContext(ctx, "systemctl", "status", "--no-pager", "--full", "orch-"+s.Namespace+"-*").CombinedOutput()
		Fail(fmt.Sprintf("%s\n--- systemctl status\n%s", res, out))
	}
}

// show reads unit properties with systemctl, the cross-check orchd itself
// never uses (it talks D-Bus).
func show(ctx context.Context, unit string, props ...string) map[string]string {
	GinkgoHelper()
	out, err := exec.CommandContext(ctx, "systemctl", "show", unit, "-p", strings.Join(props, ",")).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "systemctl show %s: %s", unit, out)
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

func unit(s *framework.Spec, svc string) string { return systemd.UnitName(s.Namespace, svc) }

// expectNoUnits: no unit of the namespace is loaded or installed.
func expectNoUnits(ctx context.Context, s *framework.Spec) {
	GinkgoHelper()
	out, err := exec.CommandContext(ctx, "systemctl", "list-units", "--all", "--plain", "--no-legend", "orch-"+s.Namespace+"-*").CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s", out)
	Expect(strings.TrimSpace(string(out))).To(BeEmpty(), "units left after fell")
	files, _ := filepath.Glob("/etc/systemd/system/orch-" + s.Namespace + "-*")
	Expect(files).To(BeEmpty(), "unit files left after fell")
}

var _ = Describe("the systemd platform", Label("platforms", "vm"), Serial, func() {
	It("runs a bare service as a unit that systemctl and survey agree on", func(ctx SpecContext) {
		s := systemdSpec("bare")
		s.WriteOrchfile("SERVICE web\nRUN sleep 1000\nENV TOKEN=never-in-a-unit\n")
		grow(ctx, s)
		row := s.EventuallyRow(ctx, "web", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		p := show(ctx, unit(s, "web"), "MainPID", "ActiveState", "SubState", "FragmentPath")
		Expect(p["ActiveState"]).To(Equal("active"))
		Expect(p["SubState"]).To(Equal("running"))
		Expect(p["MainPID"]).To(Equal(strconv.Itoa(row.Pid)), "systemctl MainPID vs survey pid")
		text, err := os.ReadFile(p["FragmentPath"])
		Expect(err).NotTo(HaveOccurred())
		Expect(string(text)).NotTo(ContainSubstring("never-in-a-unit"))
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", row.Pid))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(environ)).To(ContainSubstring("TOKEN=never-in-a-unit"))
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(6*time.Minute))

	It("restarts on failure and gives up at the start limit", func(ctx SpecContext) {
		s := systemdSpec("bare")
		s.WriteOrchfile("SERVICE crash\nRUN echo attempt; sleep 1; exit 3\nRESTART on-failure\nRESTART_DELAY 1s\nSTART_LIMIT_BURST 2\nSTART_LIMIT_INTERVAL 60s\n")
		grow(ctx, s)
		row := s.EventuallyRow(ctx, "crash", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("failed")) })
		Expect(row.Message).To(HavePrefix("start limit hit"))
		Expect(row.Restarts).To(Equal(2), "START_LIMIT_BURST 2 allows two restarts")
		Expect(row.ExitCode).NotTo(BeNil())
		Expect(*row.ExitCode).To(Equal(3))
		// systemd counts the restart it refused at the limit in NRestarts;
		// it ran the first start and two restarts.
		p := show(ctx, unit(s, "crash"), "NRestarts", "Result", "ExecMainStatus", "ActiveState")
		Expect(p).To(Equal(map[string]string{"NRestarts": "3", "Result": "exit-code", "ExecMainStatus": "3", "ActiveState": "failed"}))
		Expect(strings.Count(s.Logs(ctx, "crash"), "attempt")).To(Equal(3), "runs of the service")
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(6*time.Minute))

	It("never restarts with RESTART no, and always restarts with RESTART always", func(ctx SpecContext) {
		s := systemdSpec("bare")
		s.WriteOrchfile("SERVICE once\nRUN exit 0\n\nSERVICE loop\nRUN sleep 1\nRESTART always\nRESTART_DELAY 1s\nSTART_LIMIT_BURST 100\n")
		grow(ctx, s)
		s.EventuallyRow(ctx, "loop", func(g Gomega, r framework.Row) { g.Expect(r.Restarts).To(BeNumerically(">=", 2)) })
		once := s.EventuallyRow(ctx, "once", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("exited")) })
		Expect(once.Restarts).To(BeZero())
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(6*time.Minute))

	It("starts a REQUIRES dependent only once the dependency's HEALTHCHECK passes", func(ctx SpecContext) {
		s := systemdSpec("bare")
		ready := filepath.Join(s.Dir, "ready")
		s.WriteOrchfile(fmt.Sprintf("SERVICE db\nRUN sleep 1000\nHEALTHCHECK test -e %s\nREADINESS_TIMEOUT 60s\n\nSERVICE web\nRUN test -e %s && exec sleep 1000\nREQUIRES db\n", ready, ready))
		// The gate: once db's start job is held in start-post by its
		// HEALTHCHECK, web must not have started; then db is made healthy.
		webWhileDBUnhealthy := make(chan string, 1)
		go func() {
			defer GinkgoRecover()
			Eventually(ctx, func(g Gomega) {
				g.Expect(show(ctx, unit(s, "db"), "SubState")["SubState"]).To(Equal("start-post"))
			}).WithTimeout(framework.Scaled(3*time.Minute)).Should(Succeed(), "db's start job never waited for its HEALTHCHECK")
			webWhileDBUnhealthy <- show(ctx, unit(s, "web"), "ActiveState")["ActiveState"]
			Expect(os.WriteFile(ready, nil, 0o600)).To(Succeed())
		}()
		grow(ctx, s)
		Eventually(ctx, webWhileDBUnhealthy).Should(Receive(Equal("inactive")), "web's state while db was not yet healthy")
		s.EventuallyRow(ctx, "web", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		Expect(show(ctx, unit(s, "web"), "NRestarts")["NRestarts"]).To(Equal("0"))
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(6*time.Minute))

	It("runs a ONESHOT to completion before its dependents", func(ctx SpecContext) {
		s := systemdSpec("bare")
		marker := filepath.Join(s.Dir, "migrated")
		s.WriteOrchfile(fmt.Sprintf("SERVICE migrate\nRUN sleep 2; touch %s\nONESHOT true\n\nSERVICE app\nRUN test -e %s && exec sleep 1000\nREQUIRES migrate\n", marker, marker))
		grow(ctx, s)
		m := s.EventuallyRow(ctx, "migrate", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("exited")) })
		Expect(m.ExitCode).NotTo(BeNil())
		Expect(*m.ExitCode).To(BeZero())
		s.EventuallyRow(ctx, "app", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		Expect(show(ctx, unit(s, "migrate"), "ActiveState", "SubState")).To(Equal(map[string]string{"ActiveState": "active", "SubState": "exited"}))
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(6*time.Minute))

	It("puts MEMORY and CPUS on the unit's cgroup", func(ctx SpecContext) {
		s := systemdSpec("bare")
		s.WriteOrchfile("SERVICE capped\nRUN sleep 1000\nMEMORY 64M\nCPUS 0.5\nTASKS_MAX 77\n")
		grow(ctx, s)
		s.EventuallyRow(ctx, "capped", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		cg := show(ctx, unit(s, "capped"), "ControlGroup")["ControlGroup"]
		Expect(cg).NotTo(BeEmpty())
		read := func(f string) string {
			b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", cg, f))
			Expect(err).NotTo(HaveOccurred())
			return strings.TrimSpace(string(b))
		}
		Expect(read("memory.max")).To(Equal("67108864"))
		Expect(read("cpu.max")).To(Equal("50000 100000"))
		Expect(read("pids.max")).To(Equal("77"))
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(6*time.Minute))

	It("runs a containerd service as a unit and fell leaves no unit and no containerd object", func(ctx SpecContext) {
		s := systemdSpec("containerd")
		s.WriteOrchfile(fmt.Sprintf("SERVICE box\nFROM %s\nENV SECRET=not-in-the-unit\n", s.Image("probe")))
		grow(ctx, s)
		row := s.EventuallyState(ctx, "box", "running")
		p := show(ctx, unit(s, "box"), "ActiveState", "MainPID")
		Expect(p["ActiveState"]).To(Equal("active"))
		Expect(p["MainPID"]).NotTo(Equal("0"))
		Expect(row.ContainerID).NotTo(BeEmpty())
		s.Fell(ctx)
		expectNoUnits(ctx, s)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(8*time.Minute))
})
