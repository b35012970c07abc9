// Package platform defines who supervises services: a Platform turns Cuttings into
// Beds (pure), installs and starts them (tend), and reports, stops and tails them.
package platform

import (
	"context"
	"io"
	"time"

	"github.com/orchd/orchd/orchd/contract"
)

// Platform is one supervisor family (orchdi, systemd, launchd).
type Platform interface {
	Name() string
	// Plant is pure: it computes the artifacts for each service.
	Plant(c contract.Cuttings, scope string) (contract.Beds, error)
	// Tend writes the artifacts and, unless opts.NoStart, starts services in
	// dependency order. It is idempotent: running, unchanged services are left alone.
	Tend(ctx context.Context, beds contract.Beds, opts TendOptions) (TendResult, error)
	// Survey reports every service of the namespace that has state.
	Survey(ctx context.Context, env contract.Env) ([]ServiceStatus, error)
	// Fell stops every supervisor and service of the namespace and returns only
	// when they are gone (bounded by their stop timeouts).
	Fell(ctx context.Context, env contract.Env, opts FellOptions) error
	// Logs writes a service's log to w.
	Logs(ctx context.Context, env contract.Env, service string, w io.Writer, opts LogOptions) error
}

// TendOptions control tend.
type TendOptions struct {
	NoStart bool
	// Only, when set, names the services to start (DISABLED ones included);
	// otherwise every enabled service starts.
	Only []string
	Log  io.Writer // progress lines; nil = discard
}

// TendResult says what tend did per service.
type TendResult struct {
	Started   []string `json:"started,omitempty"`
	Unchanged []string `json:"unchanged,omitempty"`
	Restarted []string `json:"restarted,omitempty"`
	Skipped   []Skip   `json:"skipped,omitempty"`
}

// Skip is a service tend did not start, and why.
type Skip struct {
	Service string `json:"service"`
	Reason  string `json:"reason"`
}

// FellOptions control fell.
type FellOptions struct {
	// Services limits fell to these services; empty = the whole namespace.
	Services []string
	// Volumes also removes the namespace's named volumes (only with no Services).
	Volumes bool
	Log     io.Writer
}

// LogOptions control logs.
type LogOptions struct {
	Follow bool
	Lines  int // the last N lines; negative = all, 0 = none (with Follow: only new lines)
	// Timestamps prefixes each line with the time orchd read it.
	Timestamps bool
	// Since, when set, keeps only lines read at or after it.
	Since time.Time
}

// ServiceStatus is one survey row.
type ServiceStatus struct {
	Name     string `json:"name"`
	Label    string `json:"label"`
	State    string `json:"state"`
	Pid      int    `json:"pid"`
	Restarts int    `json:"restarts"`
	ExitCode *int   `json:"exit_code"`
	Healthy  bool   `json:"healthy"`
	// Health is the HEALTHCHECK verdict: "", starting, healthy, unhealthy.
	Health string `json:"health,omitempty"`
	// LeafPid is the start command's pid when Pid is another process (a
	// container's task pid reported by its containerd-run leaf), or the
	// containerd agent's for a service it runs.
	LeafPid     int           `json:"leaf_pid,omitempty"`
	Since       time.Time     `json:"since"`
	Uptime      time.Duration `json:"uptime_ns"`
	Message     string        `json:"message,omitempty"`
	ContainerID string        `json:"container_id,omitempty"`
	TaskStatus  string        `json:"task_status,omitempty"`
}
