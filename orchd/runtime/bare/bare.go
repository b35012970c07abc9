// Package bare runs RUN services as plain host processes.
package bare

import (
	"fmt"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

// Runtime is the bare runtime.
type Runtime struct{}

// New returns the bare runtime.
func New() *Runtime { return &Runtime{} }

// Name implements runtime.Runtime.
func (*Runtime) Name() string { return "bare" }

// Cut implements runtime.Runtime: RUN becomes `/bin/sh -c <command>` with the
// service's user, workdir, environment, rlimits and cgroup limits (MEMORY,
// CPUS/CPU_QUOTA, TASKS_MAX, IO_WEIGHT) applied by the supervisor.
func (*Runtime) Cut(svc spec.Service, env contract.Env) (contract.Cutting, error) {
	c := contract.Cutting{Service: svc}
	if svc.Mode != spec.ModeHost {
		c.Skip = fmt.Sprintf("service %s uses FROM %s, which the bare runtime cannot run: add an overlay with `RUN <command>` for it, or use --runtime containerd (or vm)", svc.Name, svc.Image)
		return c, nil
	}
	c.Exec.Start = shell(svc.RunCommand)
	if svc.StopCommand != "" {
		c.Exec.Stop = shell(svc.StopCommand)
	}
	if svc.ReloadCommand != "" {
		c.Exec.Reload = shell(svc.ReloadCommand)
	}
	dir := env.ProjectDir
	if svc.Workdir != "" {
		dir = env.ProjectPath(svc.Workdir)
	}
	c.Process = contract.Process{Dir: dir, User: svc.User, Env: svc.Env, EnvFiles: env.ProjectPaths(svc.EnvFiles)}
	c.Process.Rlimits = Rlimits(svc.Resources)
	if r := svc.Resources; r.Memory != "" || r.CPUs != nil || r.CPUQuota != "" || r.TasksMax > 0 || r.IOWeight > 0 {
		// The supervisor puts the service in cgroups with these limits.
		c.Process.Resources = &r
	}
	return c, nil
}

// Rlimits maps LIMIT_NOFILE and LIMIT_NPROC to POSIX rlimits (soft = hard).
func Rlimits(r spec.Resources) []contract.Rlimit {
	var out []contract.Rlimit
	if r.LimitNofile > 0 {
		out = append(out, contract.Rlimit{Type: "RLIMIT_NOFILE", Soft: uint64(r.LimitNofile), Hard: uint64(r.LimitNofile)})
	}
	if r.LimitNproc > 0 {
		out = append(out, contract.Rlimit{Type: "RLIMIT_NPROC", Soft: uint64(r.LimitNproc), Hard: uint64(r.LimitNproc)})
	}
	return out
}

func shell(cmd string) []string { return []string{"/bin/sh", "-c", cmd} }
