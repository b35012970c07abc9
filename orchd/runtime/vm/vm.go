// Package vm runs container-mode services as qemu microVMs: the service's image
// (a local OCI layout) is flattened into an initramfs together with orchd's
// guest init, and qemu boots it with the service's MEMORY, CPUS, VOLUMEs and
// PUBLISHed ports. KVM is used when qemu can run a KVM vCPU, TCG otherwise.
package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/procfs"
	"github.com/orchd/orchd/orchd/runtime/bare"
	"github.com/orchd/orchd/orchd/runtime/healthcheck"
	"github.com/orchd/orchd/orchd/runtime/vm/kernel"
	"github.com/orchd/orchd/orchd/spec"
)

// SpecVersion is the version of the vm-run spec file.
const SpecVersion = "1"

// QemuBinary is the emulator vm-run starts.
const QemuBinary = "qemu-system-x86_64"

// QemuInstall is how to get it on Debian.
const QemuInstall = "apt-get install -y qemu-system-x86"

// Spec is <state>/run/<label>.vm.json: what `orchd vm-run` needs for one service.
type Spec struct {
	Version    string       `json:"version"`
	Label      string       `json:"label"`
	Namespace  string       `json:"namespace"`
	Service    spec.Service `json:"service"`
	ProjectDir string       `json:"project_dir"`
	StateDir   string       `json:"state_dir"`
	DataDir    string       `json:"data_dir"`
	// Kernel and KernelModules override the staged kernel (from ORCHD_KERNEL /
	// ORCHD_KERNEL_MODULES when the cutting was made).
	Kernel        string `json:"kernel,omitempty"`
	KernelModules string `json:"kernel_modules,omitempty"`
}

// LoadSpec reads a vm-run spec file.
func LoadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vm spec: %w", err)
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("vm spec %s: %w", path, err)
	}
	if s.Version != SpecVersion {
		return nil, fmt.Errorf("vm spec %s: version %q, this orchd reads %q", path, s.Version, SpecVersion)
	}
	return &s, nil
}

// Runtime is the vm runtime.
type Runtime struct {
	kernel, modules string
}

// New returns the runtime. ORCHD_KERNEL / ORCHD_KERNEL_MODULES, read once here,
// pin the kernel the cuttings name; otherwise vm-run uses the staged kernel.
func New() *Runtime {
	return &Runtime{kernel: os.Getenv(kernel.EnvKernel), modules: os.Getenv(kernel.EnvModules)}
}

// Name implements runtime.Runtime.
func (*Runtime) Name() string { return "vm" }

// Cut implements runtime.Runtime: FROM services become `orchd vm-run --spec-file F`
// with F (0600) holding the service spec, so ENV values never reach an argv.
// RUN services run on the host, as with the bare runtime.
func (r *Runtime) Cut(svc spec.Service, env contract.Env) (contract.Cutting, error) {
	if svc.Mode == spec.ModeHost {
		return bare.New().Cut(svc, env)
	}
	// Refuse here (the sow step) what the guest could not apply, naming the directive.
	if _, err := GuestLimits(svc.Resources); err != nil {
		return contract.Cutting{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	label := contract.Label(env.Namespace, svc.Name)
	s := Spec{
		Version: SpecVersion, Label: label, Namespace: env.Namespace, Service: svc,
		ProjectDir: env.ProjectDir, StateDir: env.StateDir, DataDir: env.DataDir,
		Kernel: r.kernel, KernelModules: r.modules,
	}
	file := contract.Layout{StateDir: env.StateDir}.VMSpecFile(label)
	// The service travels once, in the row; plant puts it into the file.
	f, err := contract.ServiceFile(file, 0o600, s)
	if err != nil {
		return contract.Cutting{}, fmt.Errorf("vm spec for %s: %w", svc.Name, err)
	}
	return contract.Cutting{
		Service: svc,
		// The leaf sends READY=1 once the guest init has exec'd the command,
		// and runs a command HEALTHCHECK inside the guest.
		Exec: contract.Exec{Start: []string{env.Orchd, "vm-run", "--spec-file", file},
			Notify: true, NotifyHealth: healthcheck.IsCommand(svc.Healthcheck) && !svc.Oneshot},
		Process: contract.Process{Dir: env.ProjectDir},
		Files:   []contract.File{f},
	}, nil
}

// Check implements runtime.Checker: qemu must be installed.
func (r *Runtime) Check(ctx context.Context, env contract.Env) error {
	if _, err := exec.LookPath(QemuBinary); err != nil {
		return fmt.Errorf("vm runtime: %s not found; install it with `%s`", QemuBinary, QemuInstall)
	}
	return nil
}

// Sweep implements runtime.Sweeper: after every supervisor is gone, remove the
// scratch dirs of leaves that were killed before they could clean up (qemu
// itself dies with its leaf through the parent-death signal). A leaf SIGKILLed
// with its supervisor can still be exiting, mid-write of its initramfs, when
// the supervisor is already gone; removing the dir under that writer fails
// ("directory not empty") or races with it, so the sweep first waits (bounded)
// for every process that names the service's spec file or scratch dir.
func (r *Runtime) Sweep(ctx context.Context, env contract.Env, services []string) error {
	l := contract.Layout{StateDir: env.StateDir}
	var errs []error
	for _, svc := range services {
		label := contract.Label(env.Namespace, svc)
		if pids := namingProcesses(l.VMSpecFile(label), l.VMWorkDir(label)); len(pids) > 0 {
			if err := procfs.WaitGone(ctx, pids, sweepWait); err != nil {
				errs = append(errs, fmt.Errorf("sweep %s: its vm leaf or qemu is still running: %w", svc, err))
				continue
			}
		}
		if err := os.RemoveAll(l.VMWorkDir(label)); err != nil {
			errs = append(errs, fmt.Errorf("sweep %s: %w", svc, err))
		}
	}
	return errors.Join(errs...)
}

// sweepWait bounds how long Sweep waits for a dying leaf.
const sweepWait = 30 * time.Second

// namingProcesses lists the processes (other than this one) whose argv names
// one of paths: a vm leaf (its spec file) and its qemu (the initramfs in the
// scratch dir).
func namingProcesses(paths ...string) []int {
	procs, err := procfs.Processes()
	if err != nil {
		return nil
	}
	var out []int
	for _, p := range procs {
		if p.Pid == os.Getpid() {
			continue
		}
		cmd := p.Cmdline()
		for _, path := range paths {
			if strings.Contains(cmd, path) {
				out = append(out, p.Pid)
				break
			}
		}
	}
	return out
}
