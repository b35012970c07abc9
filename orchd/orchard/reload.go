package orchard

import (
	"context"
	"fmt"
	"io"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/supervise"
)

// Reload runs each named service's RELOAD command beside the running
// service (see supervise.Reload). Every service must be running and have a
// RELOAD before any is reloaded.
func Reload(ctx context.Context, c *config.Config, services []string, log io.Writer) error {
	if env, p, _, err := setup(c); err == nil {
		if r, ok := p.(platform.Reloader); ok {
			for _, svc := range services {
				if err := r.Reload(ctx, env, svc); err != nil {
					return err
				}
				if log != nil {
					fmt.Fprintf(log, "reloaded %s\n", svc)
				}
			}
			return nil
		}
	}
	targets, _, err := running(ctx, c, services)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if len(t.unit.Exec.Reload) == 0 {
			return fmt.Errorf("service %s has no RELOAD command: add `RELOAD <command>` to its SERVICE block (host services only)", t.row.Name)
		}
	}
	for _, t := range targets {
		if err := supervise.Reload(ctx, t.unit, t.row.Pid); err != nil {
			return err
		}
		if log != nil {
			fmt.Fprintf(log, "reloaded %s\n", t.row.Name)
		}
	}
	return nil
}
