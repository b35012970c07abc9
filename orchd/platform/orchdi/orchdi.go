// Package orchdi is orchd's own supervisor platform: one `orchd supervise`
// process per service, started detached by tend, talking to the rest of orchd
// only through files under the state dir (contract.Layout).
package orchdi

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/spec"
)

// Platform is orchd's own supervisor platform.
type Platform struct {
	binary string
}

// Option configures the platform.
type Option func(*Platform)

// WithBinary sets the orchd binary that runs `supervise` (default: this executable).
func WithBinary(path string) Option { return func(p *Platform) { p.binary = path } }

// New returns the platform.
func New(opts ...Option) *Platform {
	p := &Platform{}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Name implements platform.Platform.
func (*Platform) Name() string { return "orchdi" }

// SuperviseBinary is the supervisor-only build of orchd (cmd/orchd-supervise).
// Installed next to orchd, it runs the supervisors and their inits in a
// fraction of the memory the full binary needs.
const SuperviseBinary = "orchd-supervise"

// orchd returns the binary supervisors run as: WithBinary's, else
// orchd-supervise beside this executable, else this executable.
func (p *Platform) orchd() (string, error) {
	if p.binary != "" {
		return p.binary, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate orchd binary: %w", err)
	}
	sibling := filepath.Join(filepath.Dir(exe), SuperviseBinary)
	if fi, err := os.Stat(sibling); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return sibling, nil
	}
	return exe, nil
}

// Plant implements platform.Platform: per service a Unit (0600, it may hold
// ENV secrets) plus the files the runtime asked for. Pure.
func (*Platform) Plant(c contract.Cuttings, scope string) (contract.Beds, error) {
	env := c.Env
	if env.StateDir == "" || env.Namespace == "" {
		return contract.Beds{}, fmt.Errorf("plant: cuttings carry no state dir or namespace (env %+v)", env)
	}
	if !filepath.IsAbs(env.StateDir) {
		// Supervisors are recognised by the unit path in their argv.
		return contract.Beds{}, fmt.Errorf("plant: state dir %q must be absolute", env.StateDir)
	}
	l := contract.Layout{StateDir: env.StateDir}
	byName := make(map[string]contract.Cutting, len(c.Cuttings))
	for _, cut := range c.Cuttings {
		byName[cut.Service.Name] = cut
	}
	deps := func(names []string) []contract.Dependency {
		var out []contract.Dependency
		for _, n := range names {
			d := contract.Dependency{Service: n, Label: contract.Label(env.Namespace, n), ReadinessTimeout: spec.DefaultReadinessTimeout}
			if dc, ok := byName[n]; ok {
				d.Oneshot = dc.Service.Oneshot
				if dc.Service.ReadinessTimeout != "" {
					d.ReadinessTimeout = dc.Service.ReadinessTimeout
				}
			}
			out = append(out, d)
		}
		return out
	}
	return platform.PlantBeds(c, "orchdi", scope, func(cut contract.Cutting, label string) ([]contract.Artifact, error) {
		svc := cut.Service
		var arts []contract.Artifact
		u := contract.Unit{
			Version: contract.Version, Label: label, Service: svc.Name, Namespace: env.Namespace,
			ProjectDir: env.ProjectDir, Runtime: c.Runtime, StateDir: env.StateDir, Exec: cut.Exec, Process: cut.Process,
			Healthcheck: svc.Healthcheck, ReadinessTimeout: svc.ReadinessTimeout, Oneshot: svc.Oneshot,
			Restart: svc.Restart, Timeouts: svc.Timeouts,
			Stdout:   platform.LogPath(svc.Logging.Stdout, svc.Name, env, l.LogFile(label)),
			Stderr:   platform.LogPath(svc.Logging.Stderr, svc.Name, env, l.LogFile(label)),
			Requires: deps(svc.Requires), After: deps(svc.After),
		}
		b, err := json.MarshalIndent(u, "", "  ")
		if err != nil {
			return nil, err
		}
		arts = append(arts, contract.Artifact{Kind: contract.KindUnit, Path: l.UnitFile(label), Content: string(b) + "\n", Mode: 0o600})
		return arts, nil
	})
}
