package launchd

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/orchd/orchd/orchd/envfile"
)

// EnvExec is `orchd env-exec`, the wrapper a job's ProgramArguments start
// with: it reads the env files (later files win), adds them to this process's
// environment and execs argv, so ENV values never sit in the world-readable
// plist. It returns only on failure.
func EnvExec(files, argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("env-exec: no command")
	}
	kv, err := envfile.ReadAll(files)
	if err != nil {
		return err
	}
	env := os.Environ()
	for k, v := range kv {
		env = append(env, k+"="+v)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return fmt.Errorf("env-exec: %w", err)
	}
	return syscall.Exec(path, argv, env)
}
