// Package systemd is the systemd platform: each service becomes a unit
// orch-<namespace>-<service>.service that the user or system manager
// supervises. plant renders the units (pure); tend, survey, fell and logs
// talk to the manager over D-Bus (go-systemd), never by parsing systemctl.
package systemd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
)

// Platform is the systemd platform.
type Platform struct {
	scope   string
	unitDir string
	host    Host
	connect func(ctx context.Context, scope string) (manager, error)
}

var _ platform.Platform = (*Platform)(nil)

// Option configures the platform.
type Option func(*Platform)

// WithUnitDir overrides where units are installed (default: UnitDir of the scope).
func WithUnitDir(dir string) Option { return func(p *Platform) { p.unitDir = dir } }

// WithHost replaces the host probe (PID 1, bus) checked before talking to systemd.
func WithHost(h Host) Option { return func(p *Platform) { p.host = h } }

// withManager replaces the D-Bus connection (unit tests of the seam).
func withManager(connect func(ctx context.Context, scope string) (manager, error)) Option {
	return func(p *Platform) { p.connect = connect }
}

// New returns the platform for scope ("user" or "system").
func New(scope string, opts ...Option) *Platform {
	if scope == "" {
		scope = "user"
	}
	home, _ := os.UserHomeDir()
	p := &Platform{scope: scope, unitDir: UnitDir(scope, home, os.Getenv("XDG_CONFIG_HOME")), host: ThisHost()}
	p.connect = p.dialManager
	for _, o := range opts {
		o(p)
	}
	return p
}

// Name implements platform.Platform.
func (*Platform) Name() string { return "systemd" }

// Plant implements platform.Platform: per service a unit (0644, no secret),
// a 0600 EnvironmentFile when the service has ENV, and the runtime's files.
// Pure: it reads nothing but its input.
func (p *Platform) Plant(c contract.Cuttings, scope string) (contract.Beds, error) {
	env := c.Env
	if env.StateDir == "" || env.Namespace == "" {
		return contract.Beds{}, fmt.Errorf("plant: cuttings carry no state dir or namespace (env %+v)", env)
	}
	if !filepath.IsAbs(env.StateDir) {
		return contract.Beds{}, fmt.Errorf("plant: state dir %q must be absolute (units name files under it)", env.StateDir)
	}
	if scope == "" {
		scope = p.scope
	}
	unitDir := p.unitDir
	if scope != p.scope {
		home, _ := os.UserHomeDir()
		unitDir = UnitDir(scope, home, os.Getenv("XDG_CONFIG_HOME"))
	}
	orchd := env.Orchd
	if orchd == "" || !filepath.IsAbs(orchd) {
		return contract.Beds{}, fmt.Errorf("plant: cuttings carry no absolute orchd path (env.orchd %q); produce them with `orchd sow`", orchd)
	}
	l := contract.Layout{StateDir: env.StateDir}
	return platform.PlantBeds(c, "systemd", scope, func(cut contract.Cutting, label string) ([]contract.Artifact, error) {
		svc := cut.Service
		var arts []contract.Artifact
		var envPath string
		if len(cut.Process.Env) > 0 {
			envPath = envFile(l, label)
			arts = append(arts, contract.Artifact{Kind: KindEnv, Path: envPath, Content: envText(cut.Process.Env), Mode: 0o600})
		}
		logs := [2]string{
			platform.LogPath(svc.Logging.Stdout, svc.Name, env, l.LogFile(label)),
			platform.LogPath(svc.Logging.Stderr, svc.Name, env, l.LogFile(label)),
		}
		text, err := render(env, orchd, cut, logs, envPath)
		if err != nil {
			return nil, err
		}
		arts = append(arts, contract.Artifact{Kind: KindUnit, Path: filepath.Join(unitDir, UnitName(env.Namespace, svc.Name)), Content: text, Mode: 0o644})
		return arts, nil
	})
}
