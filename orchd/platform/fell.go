package platform

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/orchd/orchd/orchd/contract"
)

// Check refuses option combinations before anything is stopped.
func (o FellOptions) Check() error {
	if o.Volumes && len(o.Services) > 0 {
		return errors.New("fell: --volumes removes the whole namespace's named volumes; fell every service (no SERVICE arguments) to use it")
	}
	return nil
}

// RemoveVolumes removes, with --volumes, the named volumes orchd created for
// env's namespace: never a host-path VOLUME, the data dir root, or another
// namespace's files. Progress goes to log (may be nil).
func (o FellOptions) RemoveVolumes(env contract.Env, log io.Writer) error {
	if !o.Volumes || env.DataDir == "" {
		return nil
	}
	dir := contract.VolumesDir(env.DataDir, env.Namespace)
	if _, err := os.Stat(dir); err == nil && log != nil {
		fmt.Fprintf(log, "removing named volumes %s\n", dir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove named volumes: %w", err)
	}
	return nil
}
