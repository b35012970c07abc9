package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/orchard"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/runtime"
)

func newGrowCmd(a *app) *cobra.Command {
	var opts orchard.GrowOptions
	cmd := &cobra.Command{
		Use:   "grow [SERVICE...]",
		Short: "Parse, sow, plant and tend: start what is missing or changed",
		Long: `Start every enabled service of the Orchfile (or the SERVICEs named, with the
services they REQUIRE) that is not running or whose definition changed.

grow names orphans: services running in this namespace that the Orchfile no
longer has. --remove-orphans stops them. --wait returns only when every started
service is ready (running and healthy, or a oneshot that exited 0) and fails
naming the first one that is not.`,
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			// The platform reports each service as it goes (started, unchanged, skipped).
			opts.Only, opts.Log = args, a.progress(cmd, cfg)
			_, err = orchard.Grow(cmd.Context(), cfg, opts)
			return err
		},
	}
	cmd.Flags().BoolVar(&opts.NoStart, "no-start", false, "write and install, but start nothing")
	cmd.Flags().BoolVar(&opts.Wait, "wait", false, "return when every started service is ready; fail naming the first that is not")
	cmd.Flags().BoolVar(&opts.RemoveOrphans, "remove-orphans", false, "stop services running in the namespace that the Orchfile no longer has")
	return cmd
}

func newRestartCmd(a *app) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:               "restart SERVICE...",
		Short:             "Stop the services and grow them again; return when they have started",
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			return orchard.Restart(cmd.Context(), cfg, args, wait, a.progress(cmd, cfg))
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "return when the services are ready")
	return cmd
}

func newReloadCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "reload SERVICE...",
		Short: "Run the services' RELOAD commands; the services keep running",
		Long: `Run each SERVICE's RELOAD command once, with the service's USER, WORKDIR,
ENV and ENV_FILE, inside its PID namespace, its output appended to the service's
log. The service is not restarted and its restart count does not change. A
service without RELOAD, or one that is not running, is an error and nothing is
reloaded.`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			return orchard.Reload(cmd.Context(), cfg, args, cmd.OutOrStdout())
		},
	}
}

func newKillCmd(a *app) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [-s SIGNAL] SERVICE...",
		Short: "Send a signal to the services' main process (their restart policy applies)",
		Long: `Send SIGNAL (default SIGKILL) to each SERVICE's main process: a container's
task through containerd, a host service's process directly. The supervisor
treats the exit like any other, so RESTART decides what happens next; use
fell to stop a service for good.`,
		Args:              cobra.MinimumNArgs(1),
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			sig, err := orchard.ParseSignal(signal)
			if err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			return orchard.Kill(cmd.Context(), cfg, args, sig)
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal name (KILL, SIGHUP, term) or number")
	return cmd
}

func newExecCmd(a *app) *cobra.Command {
	var noTTY bool
	cmd := &cobra.Command{
		Use:   "exec SERVICE -- COMMAND [ARG...]",
		Short: "Run a command in a running service; exit with its exit code",
		Long: `Run COMMAND in the running SERVICE and exit with its exit code.

A container service runs it inside its container (a containerd task exec, with
the container's environment, user and working dir), with a terminal when stdin
is one. A host service runs it in the service's PID namespace (it sees the
service's processes and ends with the service; run unprivileged, orchd runs it
on the host instead) with the service's ENV, ENV_FILE, WORKDIR and USER.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("want SERVICE -- COMMAND [ARG...]")
			}
			return nil
		},
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			req := runtime.ExecRequest{Argv: args[1:], Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
			req.TTY = !noTTY && isTerminal(req.Stdin)
			code, err := orchard.Exec(cmd.Context(), cfg, args[0], req)
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&noTTY, "no-tty", "T", false, "no terminal even when stdin is one")
	return cmd
}

func newSurveyCmd(a *app) *cobra.Command {
	var o orchard.SurveyOptions
	cmd := &cobra.Command{
		Use:   "survey [SERVICE...]",
		Short: "Show each service's state, health, pid, restarts, uptime, last exit, and why it is not running",
		Long: `Show every service of the namespace (or the SERVICEs named): SERVICE STATE
HEALTH PID RESTARTS UPTIME EXIT, and a REASON for anything not running. PID is
shown only while that process is alive. --watch redraws the table every
--interval until interrupted (in place on a terminal).`,
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			o.Terminal = isTerminal(cmd.OutOrStdout())
			return orchard.ShowSurvey(cmd.Context(), cfg, args, cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().BoolVar(&o.JSON, "json", false, "print JSON")
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "redraw every --interval until interrupted")
	cmd.Flags().DurationVar(&o.Interval, "interval", time.Second, "--watch refresh interval")
	return cmd
}

func newFellCmd(a *app) *cobra.Command {
	var opts platform.FellOptions
	cmd := &cobra.Command{
		Use:   "fell [SERVICE...]",
		Short: "Stop services and their supervisors; return when they are gone (data is kept)",
		Long: `Stop every service of the namespace, or only the SERVICEs named, and return
when every supervisor, process and container is gone.

fell removes the services' supervisor and status files. It keeps the logs
(orchd logs still reads them) and it keeps all data: the data dir, named
volumes and host-path VOLUMEs are never touched.

--volumes also removes the named volumes orchd created for this namespace
(<data-dir>/volumes/<namespace>). It never removes a host-path VOLUME, the data
dir itself or anything of another namespace. It cannot be combined with SERVICE
arguments.`,
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			opts.Services = args
			opts.Log = a.progress(cmd, cfg)
			return orchard.Fell(cmd.Context(), cfg, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Volumes, "volumes", false, "also remove this namespace's named volumes (<data-dir>/volumes/<namespace>)")
	return cmd
}
