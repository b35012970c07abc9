package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/orchard"
	"github.com/orchd/orchd/orchd/platform"
)

func newGrowCmd(a *app) *cobra.Command {
	var noStart bool
	cmd := &cobra.Command{
		Use:   "grow [SERVICE...]",
		Short: "Parse, sow, plant and tend: start what is missing or changed",
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			// The platform reports each service as it goes (started, unchanged, skipped).
			_, err = orchard.Grow(cmd.Context(), cfg, args, noStart, a.progress(cmd, cfg))
			return err
		},
	}
	cmd.Flags().BoolVar(&noStart, "no-start", false, "write and install, but start nothing")
	return cmd
}

func newSurveyCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "survey",
		Short: "Show every service's state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			rows, err := orchard.Survey(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if asJSON {
				if rows == nil {
					rows = []platform.ServiceStatus{}
				}
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			printSurvey(cmd.OutOrStdout(), rows)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printSurvey(w io.Writer, rows []platform.ServiceStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	withTask := false
	for _, r := range rows {
		withTask = withTask || r.ContainerID != ""
	}
	if withTask {
		fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tRESTARTS\tUPTIME\tEXIT\tCONTAINER\tTASK")
	} else {
		fmt.Fprintln(tw, "SERVICE\tSTATE\tPID\tRESTARTS\tUPTIME\tEXIT")
	}
	for _, r := range rows {
		pid, exit, up := "-", "-", "-"
		if r.Pid > 0 {
			pid = strconv.Itoa(r.Pid)
		}
		if r.ExitCode != nil {
			exit = strconv.Itoa(*r.ExitCode)
		}
		if r.State == "running" && r.Uptime > 0 {
			up = r.Uptime.Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s", r.Name, r.State, pid, r.Restarts, up, exit)
		if withTask {
			fmt.Fprintf(tw, "\t%s\t%s", dash(r.ContainerID), dash(r.TaskStatus))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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

func newLogsCmd(a *app) *cobra.Command {
	var opts platform.LogOptions
	cmd := &cobra.Command{
		Use:   "logs SERVICE",
		Short: "Print a service's log",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			return orchard.Logs(cmd.Context(), cfg, args[0], cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "follow the log")
	cmd.Flags().IntVarP(&opts.Lines, "lines", "n", 0, "print only the last N lines")
	return cmd
}
