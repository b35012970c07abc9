package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/orchard"
)

func newLogsCmd(a *app) *cobra.Command {
	var opts orchard.LogsOptions
	var lines, since string
	cmd := &cobra.Command{
		Use:   "logs [SERVICE...]",
		Short: "Print the services' output, each line prefixed with its service",
		Long: `Print the output (STDOUT and STDERR) of the SERVICEs named, or of every service
of the namespace, including logs kept after fell. Each line starts with its
service's name, coloured on a terminal. -f follows the logs and ends when every
followed service has ended (exited, failed or felled).

orchd's own service log records when each line was written and whether it
came on stdout or stderr: -t prints that time (RFC 3339, UTC) before each
line, --since keeps the lines written at or after a time (2026-12-01T14:00:00Z)
or a duration ago (10m, 1h30m). A STDOUT or STDERR path named in the Orchfile
holds the output exactly as the service wrote it, without times: -t and
--since are refused for such a service. A line the service has not ended
with a newline is printed when reading stops.`,
		ValidArgsFunction: a.completeServices,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := orchard.ParseLines(lines)
			if err != nil {
				return err
			}
			opts.Lines = n
			if opts.Since, err = orchard.ParseSince(since, time.Now()); err != nil {
				return err
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			opts.Color = isTerminal(cmd.OutOrStdout())
			return orchard.Logs(cmd.Context(), cfg, args, cmd.OutOrStdout(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "follow until the services end")
	cmd.Flags().StringVarP(&lines, "lines", "n", "all", "print only the last N lines of each log (0: none)")
	cmd.Flags().BoolVar(&opts.NoPrefix, "no-log-prefix", false, "do not prefix lines with the service name")
	cmd.Flags().BoolVarP(&opts.Timestamps, "timestamps", "t", false, "print the time each line was written (RFC 3339, UTC)")
	cmd.Flags().StringVar(&since, "since", "", "only lines written since a time (RFC 3339) or a duration ago (10m)")
	return cmd
}
