package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	clog "github.com/containerd/log"
	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/logline"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent/server"
	"github.com/orchd/orchd/orchd/runtime/containerd/leaf"
)

func newContainerdRunCmd(_ *app) *cobra.Command {
	var file, b64 string
	cmd := &cobra.Command{
		Use:   "containerd-run --spec-file FILE",
		Short: "Run one FROM service as a containerd container in the foreground (started by a supervisor)",
		Long: `containerd-run owns one container's lifecycle: it removes a stale container with
the same id, imports or pulls the image, creates the container and its snapshot,
runs the task with its output on this process's stdout/stderr, and exits with the
task's exit code. SIGTERM/SIGINT stop the task (SIGTERM, TIMEOUT_STOP grace,
SIGKILL) and remove the container and snapshot before exiting.

The run spec is written by 'orchd sow --runtime containerd' (0600, it may hold
ENV values); --spec takes the same JSON base64-encoded.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// One service's leaf waits on containerd nearly all the time,
			// and N of them start at once: with one P its runtime spins no
			// idle thread looking for work, and a higher GC target spares
			// it collections during its short, allocation-heavy start
			// (measured: about a quarter less CPU per leaf, the same peak
			// RSS; docs/performance.md).
			runtime.GOMAXPROCS(1)
			debug.SetGCPercent(400)
			rs, err := crd.LoadRunSpec(file, b64)
			if err != nil {
				return err
			}
			// Started by orchd's supervisor, stdout and stderr may be the
			// service log: then the task's output and the leaf's own
			// messages are written as its records.
			stdout, stderr := logline.Streams(os.Getenv(logline.RecordsEnv), os.Stdout, os.Stderr)
			os.Unsetenv(logline.RecordsEnv)
			log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel(cmd)}))
			slog.SetDefault(log)            // the runtime package's clean-up logs there too
			clog.L.Logger.SetOutput(stderr) // and so does the containerd client
			code, err := leaf.Run(cmd.Context(), rs, leaf.Options{Stdout: stdout, Stderr: stderr, Log: log})
			if err != nil {
				fmt.Fprintln(stderr, "orchd:", err)
				return &exitError{code: 1}
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "spec-file", "", "run spec file (JSON)")
	cmd.Flags().StringVar(&b64, "spec", "", "run spec as base64 JSON")
	return cmd
}

func newContainerdAgentCmd(_ *app) *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   agent.Command + " --state-dir DIR",
		Short: "Run the container services of a state dir in one process (started by their supervisors)",
		Long: `containerd-agent holds one containerd client for every container service of a
state dir. Each service's supervisor hands it the run spec, stdout and stderr;
the agent runs the service as an in-process leaf would and exits once its last
client has gone. A client whose connection closes (its supervisor died) has its
task stopped and removed. It tells its starter it listens by writing "ready" to
file descriptor 3.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if stateDir == "" {
				return fmt.Errorf("%s: --state-dir is required", agent.Command)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(cmd)}))
			slog.SetDefault(log)
			ready := os.NewFile(3, "ready")
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return server.Serve(ctx, stateDir, readyOnce{ready}, log)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the state dir whose leaves this agent serves")
	return cmd
}

// readyOnce writes the agent's ready line to its starter and closes the
// pipe, so the starter's read ends.
type readyOnce struct{ f *os.File }

func (r readyOnce) Write(p []byte) (int, error) {
	if r.f == nil {
		return len(p), nil
	}
	n, err := r.f.Write(p)
	r.f.Close()
	return n, err
}
