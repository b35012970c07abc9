package orchard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/runtime"
	"github.com/orchd/orchd/orchd/supervise"
)

// Restart stops the named services and grows them again from the Orchfile;
// it returns when they have been started (with --wait semantics when wait).
func Restart(ctx context.Context, c *config.Config, services []string, wait bool, log io.Writer) error {
	if err := Fell(ctx, c, platform.FellOptions{Services: services, Log: log}); err != nil {
		return err
	}
	_, err := Grow(ctx, c, GrowOptions{Only: services, Wait: wait, Log: log})
	return err
}

// target is one running service a per-service verb acts on.
type target struct {
	row  platform.ServiceStatus
	unit contract.Unit
	rt   runtime.Runtime // the runtime the service was grown with
}

// container reports whether the service runs in a container of rt (its
// start command is the runtime's leaf rather than the service itself).
func (t target) container() bool {
	start := t.unit.Exec.Start
	return len(start) > 1 && (start[1] == "containerd-run" || start[1] == "vm-run")
}

// running resolves services that are running in the namespace, or says which are.
func running(ctx context.Context, c *config.Config, services []string) ([]target, contract.Env, error) {
	env, p, _, err := setup(c)
	if err != nil {
		return nil, env, err
	}
	rows, err := p.Survey(ctx, env)
	if err != nil {
		return nil, env, err
	}
	l := contract.Layout{StateDir: env.StateDir}
	var known []string
	for _, r := range rows {
		known = append(known, r.Name)
	}
	var out []target
	for _, name := range services {
		i := slices.IndexFunc(rows, func(r platform.ServiceStatus) bool { return r.Name == name })
		if i < 0 {
			return nil, env, unknownService(name, known)
		}
		r := rows[i]
		if r.State != contract.StateRunning || r.Pid <= 0 {
			return nil, env, fmt.Errorf("service %s is %s, not running%s", name, r.State, reasonSuffix(r))
		}
		b, err := contract.ReadPrivate(l.UnitFile(r.Label))
		if err != nil {
			return nil, env, fmt.Errorf("service %s: %w", name, err)
		}
		var u contract.Unit
		if err := json.Unmarshal(b, &u); err != nil {
			return nil, env, fmt.Errorf("service %s: unit %s: %w", name, l.UnitFile(r.Label), err)
		}
		cc := *c
		cc.Runtime = u.Runtime
		rt, err := RuntimeFor(&cc)
		if err != nil {
			return nil, env, err
		}
		out = append(out, target{row: r, unit: u, rt: rt})
	}
	return out, env, nil
}

// Kill sends sig to each service's main process: a container's task through
// its runtime, a host service's process directly. The supervisor applies the
// restart policy to the exit, as to any other.
func Kill(ctx context.Context, c *config.Config, services []string, sig syscall.Signal) error {
	targets, env, err := running(ctx, c, services)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if t.container() {
			k, ok := t.rt.(runtime.Killer)
			if !ok {
				return fmt.Errorf("kill %s: the %s runtime cannot signal a container", t.row.Name, t.rt.Name())
			}
			if err := k.Kill(ctx, env, t.row.Name, sig); err != nil {
				return err
			}
			continue
		}
		if err := syscall.Kill(t.row.Pid, sig); err != nil {
			return fmt.Errorf("kill %s (pid %d): %w", t.row.Name, t.row.Pid, err)
		}
	}
	return nil
}

// Exec runs req in a running service and returns the command's exit code: in
// its container (runtime task exec), or for a host service in its PID
// namespace with its environment, WORKDIR and USER.
func Exec(ctx context.Context, c *config.Config, service string, req runtime.ExecRequest) (int, error) {
	targets, env, err := running(ctx, c, []string{service})
	if err != nil {
		return 0, err
	}
	t := targets[0]
	if t.container() {
		x, ok := t.rt.(runtime.Execer)
		if !ok {
			return 0, fmt.Errorf("exec %s: the %s runtime cannot run a command in a container", service, t.rt.Name())
		}
		return x.Exec(ctx, env, service, req)
	}
	cmd, err := supervise.Command(t.unit.Process, req.Argv)
	if err != nil {
		return 0, fmt.Errorf("exec %s: %w", service, err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = req.Stdin, req.Stdout, req.Stderr
	err = supervise.RunIn(cmd, t.row.Pid)
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("exec %s: %w", service, err)
	}
	return 0, nil
}

// ParseSignal reads a signal for Kill: a name with or without SIG, any case,
// or a number.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q: use a name such as KILL, TERM, HUP, USR1, or a number", s)
}
