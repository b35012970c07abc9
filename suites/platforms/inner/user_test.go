//go:build inception

package inner

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/suites/framework"
)

var _ = Describe("the systemd user manager", Label("platforms", "vm", "user"), Serial, func() {
	It("runs a service as a unit of a user manager with --user", func(ctx SpecContext) {
		s := systemdSpec("bare")
		// A user manager of its own for root: `systemd --user` as a
		// transient system unit (Delegate=yes gives it a cgroup subtree),
		// its private socket under XDG_RUNTIME_DIR and its unit dir under
		// XDG_CONFIG_HOME, both shared with orchd.
		runtimeDir := filepath.Join(s.Dir, "xdg-run")
		configHome := filepath.Join(s.Dir, "xdg-config")
		Expect(os.MkdirAll(runtimeDir, 0o700)).To(Succeed())
		Expect(os.MkdirAll(configHome, 0o700)).To(Succeed())
		mgr := "orchd-user-" + s.Namespace + ".service"
		out, err := exec.CommandContext(ctx, "systemd-run", "--unit", mgr, "-p", "Type=notify", "-p", "Delegate=yes",
			"--setenv=XDG_RUNTIME_DIR="+runtimeDir, "--setenv=XDG_CONFIG_HOME="+configHome, "--setenv=HOME="+s.Dir,
			"/lib/systemd/systemd", "--user").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "start a user manager: %s", out)
		DeferCleanup(func(ctx SpecContext) {
			out, err := exec.CommandContext(ctx, "systemctl", "stop", mgr).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "stop the user manager: %s", out)
		})
		Expect(filepath.Join(runtimeDir, "systemd", "private")).To(BeAnExistingFile(), "the user manager's private socket")

		s.CLI.Env = append(s.CLI.Env, "ORCH_SCOPE=user", "XDG_RUNTIME_DIR="+runtimeDir, "XDG_CONFIG_HOME="+configHome)
		s.WriteOrchfile("SERVICE web\nRUN exec sleep 1000\nENV TOKEN=user-scope\n")
		grow(ctx, s)
		row := s.EventuallyRow(ctx, "web", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		file := filepath.Join(configHome, "systemd", "user", unit(s, "web"))
		Expect(file).To(BeAnExistingFile(), "the unit in the user manager's unit dir")
		_, err = os.Stat(filepath.Join("/etc/systemd/system", unit(s, "web")))
		Expect(err).To(MatchError(os.ErrNotExist), "a --user unit in the system unit dir")
		// The process lives in the user manager's cgroup subtree: the user
		// manager, not the system one, runs it.
		cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", row.Pid))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(cg)).To(ContainSubstring("/" + mgr + "/"))
		Expect(string(cg)).To(HaveSuffix("/" + unit(s, "web") + "\n"))
		Expect(show(ctx, unit(s, "web"), "LoadState")["LoadState"]).To(Equal("not-found"), "the system manager knows the --user unit")

		s.Fell(ctx)
		Expect(file).NotTo(BeAnExistingFile())
		Eventually(ctx, func() error { return syscall.Kill(row.Pid, 0) }).
			WithTimeout(framework.Scaled(time.Minute)).Should(HaveOccurred(), "the --user service's process outlived fell")
		left, _ := filepath.Glob(filepath.Join(configHome, "systemd", "user", "orch-*"))
		Expect(left).To(BeEmpty())
	}, framework.SpecDeadline(6*time.Minute))
})
