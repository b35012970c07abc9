package guest

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// execInit replaces this init with the image's own (Config.ExecInit): it
// becomes PID 1 on the root, mounts and volumes set up here. It returns only
// when the exec fails.
func (p *proc) execInit() error {
	cfg := p.cfg
	path, err := lookPath(cfg.Argv[0], cfg.Env)
	if err != nil {
		return fmt.Errorf("exec init %s: %w", cfg.Argv[0], err)
	}
	if cfg.Dir != "" {
		if err := os.Chdir(cfg.Dir); err != nil {
			return fmt.Errorf("exec init: %w", err)
		}
	}
	// The host counts the service as started once told; the port is then
	// closed, free for the new init's own "exit <code>".
	ctl, err := openPort(ControlPort, 5*time.Second)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(ctl, "started\n"); err != nil {
		ctl.Close()
		return fmt.Errorf("exec init: tell the host: %w", err)
	}
	ctl.Close()
	p.step("handing PID 1 to %v", cfg.Argv)
	unix.Sync()
	return fmt.Errorf("exec init %s: %w", path, unix.Exec(path, cfg.Argv, cfg.Env))
}
