package supervise

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
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

// RunIn runs cmd (from Command) inside the PID namespace of pid, a running
// service's main process, and waits for it: it sees the service's pids (a
// pidfile the service wrote means the same process) and is killed with the
// service's namespace, as STOP and RELOAD are. Unprivileged, the service's
// namespace belongs to a user namespace that a multithreaded process cannot
// join, so cmd runs on the host.
func RunIn(cmd *exec.Cmd, pid int) error {
	if os.Geteuid() != 0 {
		return cmd.Run()
	}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: setns(CLONE_NEWPID) changes where this thread's
		// children go; the thread ends with the goroutine.
		runtime.LockOSThread()
		if err := joinPIDNamespace(pid); err != nil {
			started <- err
			return
		}
		started <- cmd.Start()
	}()
	if err := <-started; err != nil {
		return err
	}
	return cmd.Wait()
}
