package framework

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/harness/matrix"
	"github.com/orchd/orchd/harness/ociruntime"
)

// Environment names the stack a suite ran on. Every report carries it.
type Environment struct {
	// Where is "host", or "vm" inside the inception VM (ORCHD_SUITE_WHERE).
	Where  string `json:"where"`
	Kernel string `json:"kernel"`
	// CgroupMode is "v2" (unified) or "v1" (legacy or hybrid).
	CgroupMode string `json:"cgroup_mode"`
	// Toolchain is the staged toolchain's name ("" for an external daemon).
	Toolchain  string `json:"toolchain,omitempty"`
	Containerd string `json:"containerd"`
	// OCIRuntime names the runc-compatible runtime containerd's runc shim
	// runs (runc, crun, runsc); OCIRuntimeBinary is the binary given as the
	// shim's BinaryName (a wrapper when the runtime needs flags).
	OCIRuntime        string `json:"oci_runtime"`
	OCIRuntimeBinary  string `json:"oci_runtime_binary,omitempty"`
	OCIRuntimeVersion string `json:"oci_runtime_version"`
}

// Label is the environment as a file-name part: host-v1-v2.2.1-runc.
func (e Environment) Label() string {
	tc := e.Toolchain
	if tc == "" {
		tc = "external"
	}
	return strings.Join([]string{e.Where, e.CgroupMode, tc, e.OCIRuntime}, "-")
}

// OCIRuntime names the OCI runtime the suites run containers with
// (ORCHD_OCI_RUNTIME, a name or a binary named after it; default runc).
func OCIRuntime() string {
	return filepath.Base(envOr(EnvOCIRuntime, ociruntime.Default))
}

// environment describes this process's stack; containerd is the daemon's
// version, ociBinary the runc shim's BinaryName ("" = runc).
func environment(ctx context.Context, toolchainName, containerd, ociBinary string) Environment {
	e := Environment{
		Where:            envOr(EnvWhere, "host"),
		CgroupMode:       fmt.Sprintf("v%d", HostStack().CgroupVersion),
		Toolchain:        toolchainName,
		Containerd:       containerd,
		OCIRuntime:       OCIRuntime(),
		OCIRuntimeBinary: ociBinary,
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		e.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	if b, err := exec.CommandContext(ctx, cmp.Or(ociBinary, e.OCIRuntime), "--version").Output(); err == nil {
		e.OCIRuntimeVersion, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
	} else {
		e.OCIRuntimeVersion = fmt.Sprintf("(%s --version: %v)", e.OCIRuntime, err)
	}
	return e
}

// daemonVersion asks the daemon for its version.
func (f *Framework) daemonVersion(ctx context.Context) string {
	c, err := f.Client()
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer c.Close()
	v, err := c.Version(ctx)
	if err != nil {
		return fmt.Sprintf("(version: %v)", err)
	}
	return v.Version
}

// afterSuite fails a run in which no spec ran (a filter that matches
// nothing proves nothing), and writes the reports to ORCHD_REPORT_DIR when
// set: <suite>-<environment>.junit.xml, .json and .env.json.
func (f *Framework) afterSuite(r Report) {
	if dir := os.Getenv(EnvReportDir); dir != "" {
		if err := f.writeReports(dir, r); err != nil {
			Fail(fmt.Sprintf("write the %s reports to %s: %v", f.Name, dir, err))
		}
	}
	if r.PreRunStats.SpecsThatWillRun == 0 {
		Fail(fmt.Sprintf("suite %s ran 0 of %d specs: a run that proves nothing is a failure (check the focus and label filters)", f.Name, r.PreRunStats.TotalSpecs))
	}
}

func (f *Framework) writeReports(dir string, r types.Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if f.Env.Where == "" { // the setup failed before the daemon was known
		f.Env = environment(context.Background(), f.Daemon.Toolchain, "(unknown: setup failed)", f.shared.OCIBinary)
	}
	base := filepath.Join(dir, f.Name+"-"+f.Env.Label())
	if err := reporters.GenerateJUnitReport(r, base+".junit.xml"); err != nil {
		return err
	}
	if err := reporters.GenerateJSONReport(r, base+".json"); err != nil {
		return err
	}
	// The suite's name rides along, so the matrix (harness/matrix) needs no
	// file-name parsing.
	b, err := json.MarshalIndent(struct {
		Suite string `json:"suite"`
		Environment
	}{f.Name, f.Env}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(base+matrix.EnvSuffix, append(b, '\n'), 0o644)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
