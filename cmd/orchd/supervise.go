package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/supervise"
)

func newSuperviseCmd(a *app) *cobra.Command {
	var (
		unitPath string
		asInit   bool
	)
	cmd := &cobra.Command{
		Use:   "supervise --spec UNIT",
		Short: "Supervise one service from its unit file (started by the orchdi platform)",
		Long: "supervise runs one service as its unit file says: dependency gates, pre_start, start,\n" +
			"healthchecks, restarts, stop and post_stop, keeping <state>/status/<label>.json current.\n" +
			"SIGTERM or SIGINT stops the service and then the supervisor.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asInit {
				return &exitError{code: supervise.InitMain()}
			}
			if unitPath == "" {
				return errors.New("supervise: --spec UNIT is required")
			}
			return supervise.Run(cmd.Context(), unitPath)
		},
	}
	cmd.Flags().StringVar(&unitPath, "spec", "", "the unit file (JSON) to supervise")
	cmd.Flags().BoolVar(&asInit, "init", false, "run as the PID 1 of a command's namespace (internal)")
	cmd.Flags().MarkHidden("init")
	return cmd
}
