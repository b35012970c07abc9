package platform

import (
	"context"
	"strings"

	"github.com/orchd/orchd/orchd/contract"
)

// NewBed is the platform-neutral part of a cutting's Bed: its label, service,
// ordering and skip reason, with no artifacts yet.
func NewBed(namespace string, cut contract.Cutting) contract.Bed {
	svc := cut.Service
	return contract.Bed{Label: contract.Label(namespace, svc.Name), Service: svc.Name, Disabled: svc.Disabled, Skip: cut.Skip,
		Requires: svc.Requires, After: svc.After, Artifacts: []contract.Artifact{}}
}

// LogPath resolves STDOUT/STDERR for a platform: ${SERVICE_NAME} filled,
// relative paths against the project dir, empty = def (the service log).
func LogPath(p, service string, env contract.Env, def string) string {
	if p == "" {
		return def
	}
	return env.ProjectPath(strings.ReplaceAll(p, "${SERVICE_NAME}", service))
}

// Reloader is a platform that reloads a service itself (systemd's
// ReloadUnit runs the unit's ExecReload=, from RELOAD).
type Reloader interface {
	Reload(ctx context.Context, env contract.Env, service string) error
}

// SkipReason says why tend does not start a bed ("" = start it): the
// runtime could not cut it, or it is DISABLED and was not named.
func SkipReason(b contract.Bed, named bool) string {
	switch {
	case b.Skip != "":
		return b.Skip
	case b.Disabled && !named:
		return "disabled (name it to start it)"
	}
	return ""
}
