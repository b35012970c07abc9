// Package runtime defines how a service is executed: a Runtime turns one service
// spec into a Cutting (argv vectors plus files), purely, without I/O.
package runtime

import (
	"context"
	"io"
	"syscall"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

// Runtime cuts services into executable form. Cut must be pure: no I/O.
type Runtime interface {
	Name() string
	Cut(svc spec.Service, env contract.Env) (contract.Cutting, error)
}

// Checker is implemented by runtimes that depend on something outside orchd
// (a daemon, a kernel) and can tell, before grow starts anything, whether it is usable.
type Checker interface {
	Check(ctx context.Context, env contract.Env) error
}

// Sweeper is implemented by runtimes that leave objects outside the process tree
// (containers, snapshots). fell calls Sweep after every supervisor is gone.
type Sweeper interface {
	Sweep(ctx context.Context, env contract.Env, services []string) error
}

// Describer is implemented by runtimes that can add detail to survey rows.
type Describer interface {
	Describe(ctx context.Context, env contract.Env, services []string) (map[string]Detail, error)
}

// Detail is runtime-specific survey information for one service.
type Detail struct {
	ContainerID string `json:"container_id,omitempty"`
	TaskStatus  string `json:"task_status,omitempty"`
}

// Execer is implemented by runtimes that run a command inside a running
// service's container (`orchd exec`).
type Execer interface {
	Exec(ctx context.Context, env contract.Env, service string, req ExecRequest) (int, error)
}

// Killer is implemented by runtimes that signal a service's container
// themselves (`orchd kill`); host services are signalled directly.
type Killer interface {
	Kill(ctx context.Context, env contract.Env, service string, sig syscall.Signal) error
}

// ExecRequest is one command to run inside a running service.
type ExecRequest struct {
	Argv   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// TTY allocates a terminal; Stdin is then the local terminal (*os.File),
	// put into raw mode while the command runs.
	TTY bool
}
