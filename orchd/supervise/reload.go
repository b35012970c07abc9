package supervise

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/orchd/orchd/orchd/contract"
)

// Reload runs u's reload command (RELOAD) once for its running service, whose
// main process is servicePid: with the service's USER, WORKDIR and
// environment, inside the service's PID namespace (as STOP runs, so a pid the
// service wrote down means the same process), its output appended to the
// service's log. Bounded by TIMEOUT_START. The service is not restarted and
// its supervisor's restart count does not change.
func Reload(ctx context.Context, u contract.Unit, servicePid int) error {
	if len(u.Exec.Reload) == 0 {
		return fmt.Errorf("service %s has no RELOAD command: add `RELOAD <command>` to its SERVICE block (host services only)", u.Service)
	}
	pc, err := resolveProcess(u.Process)
	if err != nil {
		return fmt.Errorf("reload %s: %w", u.Service, err)
	}
	l := contract.Layout{StateDir: u.StateDir}
	out, err := openOutputs(l, u)
	if err != nil {
		return fmt.Errorf("reload %s: %w", u.Service, err)
	}
	defer out.Close()
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locate orchd binary: %w", err)
	}
	s := &supervisor{unit: u, layout: l, log: slog.Default().With("service", u.Service),
		sp: spawner{exe: "/proc/self/exe", argv0: exe, unitPath: l.UnitFile(u.Label)}}
	code, err := s.runCommand(ctx, u.Exec.Reload, pc, s.timeoutStart(), spawnOpts{out: out, join: servicePid})
	if err != nil {
		return fmt.Errorf("reload %s: %w", u.Service, err)
	}
	if code != 0 {
		return fmt.Errorf("reload %s: RELOAD exited with code %d (see orchd logs %s)", u.Service, code, u.Service)
	}
	return nil
}
