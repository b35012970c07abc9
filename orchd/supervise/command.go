package supervise

import (
	"errors"
	"os/exec"
	"syscall"

	"github.com/orchd/orchd/orchd/contract"
)

// Command builds a command that runs argv as a unit's own processes run: with
// its environment (ENV_FILE, then ENV), WORKDIR and USER (`orchd exec` on a
// host service).
func Command(p contract.Process, argv []string) (*exec.Cmd, error) {
	if len(argv) == 0 {
		return nil, errors.New("no command")
	}
	pc, err := resolveProcess(p)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = pc.dir, pc.env
	if pc.cred != nil && !pc.userns {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: pc.cred.uid, Gid: pc.cred.gid, Groups: pc.cred.groups}}
	}
	return cmd, nil
}
