package agent

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/orchd/orchd/orchd/logline"
)

// LeafMain is `containerd-run --agent ORCHD --state-dir D --spec-file F`:
// the service runs in the state dir's agent (started with orchd when none
// runs), and this process is its leaf. It returns the exit code.
func LeafMain(orchd, stateDir, specFile, spec string) int {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	// This process's own messages go to the service log as records too.
	_, stderr := logline.Streams(os.Getenv(logline.RecordsEnv), os.Stdout, os.Stderr)
	l := &Leaf{
		StateDir: stateDir,
		Orchd:    orchd,
		Request:  Request{SpecFile: specFile, Spec: spec},
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Notify: func(state string) error {
			_, err := daemon.SdNotify(false, state)
			return err
		},
		Stop: stop,
	}
	if stateDir == "" || orchd == "" {
		fmt.Fprintln(stderr, "orchd: containerd-run --agent needs the agent's binary and --state-dir")
		return 2
	}
	code, err := l.Run(context.Background())
	if err != nil {
		fmt.Fprintln(stderr, "orchd:", err)
		return 1
	}
	return code
}
