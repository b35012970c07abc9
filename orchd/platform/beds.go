package platform

import (
	"strings"

	"github.com/orchd/orchd/orchd/contract"
)

// LogPath resolves STDOUT/STDERR for a platform: ${SERVICE_NAME} filled,
// relative paths against the project dir, empty = def (the service log).
func LogPath(p, service string, env contract.Env, def string) string {
	if p == "" {
		return def
	}
	return env.ProjectPath(strings.ReplaceAll(p, "${SERVICE_NAME}", service))
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
