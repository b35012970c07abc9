package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/spf13/cobra"
)

func newDaemonCmd() *cobra.Command {
	var (
		tcOpts  toolchain.Options
		opts    daemon.Options
		showLog bool
	)
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run a private containerd in the foreground; Ctrl-C stops it and removes its dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			tcOpts.Progress = cmd.ErrOrStderr()
			fmt.Fprintf(cmd.ErrOrStderr(), "toolchain: %s\n", toolchain.Rule(tcOpts.Containerd))
			tc, err := toolchain.Resolve(ctx, tcOpts)
			if err != nil {
				return err
			}
			if showLog {
				opts.LogWriter = cmd.ErrOrStderr()
			}
			d, err := daemon.Start(ctx, tc, opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "containerd %s (%s) pid %d\n", tc.Name, tc.Containerd.Version, d.Pid())
			fmt.Fprintf(out, "address: %s\nroot:    %s\nstate:   %s\nlog:     %s\n", d.Address(), d.Root(), d.State(), d.LogPath())
			fmt.Fprintf(out, "export ORCHD_CONTAINERD_SOCKET=%s\n", d.Address())
			<-ctx.Done()
			return stopDaemon(out, d)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "work dir for root, state, sockets and log (default: new dir under /tmp); removed on exit")
	containerdFlag(cmd.Flags(), &tcOpts.Containerd)
	cmd.Flags().StringVar(&tcOpts.Dir, "toolchain-dir", "", "toolchain build cache dir")
	cmd.Flags().BoolVar(&opts.Debug, "debug", false, "containerd debug logging and debug socket")
	cmd.Flags().BoolVar(&showLog, "log", false, "copy the daemon log to stderr")
	return cmd
}

func stopDaemon(out io.Writer, d *daemon.Daemon) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fmt.Fprintln(out, "stopping containerd")
	return d.Stop(ctx)
}
