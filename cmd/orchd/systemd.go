package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/platform/systemd"
	"github.com/orchd/orchd/orchd/spec"
)

// newHealthWaitCmd is the ExecStartPost= of systemd units with a HEALTHCHECK:
// it returns when the check passes, so the unit's start job, and the units
// that REQUIRE it, wait for health.
func newHealthWaitCmd(*app) *cobra.Command {
	var readiness string
	cmd := &cobra.Command{
		Use:    "health-wait --readiness-timeout D -- HEALTHCHECK",
		Short:  "Wait until a HEALTHCHECK passes (systemd units' ExecStartPost)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := spec.ParseDuration(readiness)
			if err != nil {
				return fmt.Errorf("--readiness-timeout: %w", err)
			}
			return systemd.WaitHealthy(cmd.Context(), args[0], d, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&readiness, "readiness-timeout", string(spec.DefaultReadinessTimeout), "give up after this long (READINESS_TIMEOUT)")
	return cmd
}
