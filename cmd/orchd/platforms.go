package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/platform/launchd"
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

// newEnvExecCmd is how launchd jobs get their ENV without it being in the
// world-readable plist: read the env files (later wins), then exec.
func newEnvExecCmd(*app) *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:    "env-exec --env-file F... -- COMMAND [ARG...]",
		Short:  "Exec a command with the environment from env files (launchd jobs)",
		Args:   cobra.MinimumNArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return launchd.EnvExec(files, args)
		},
	}
	cmd.Flags().StringArrayVar(&files, "env-file", nil, "KEY=value file (repeatable; later files win)")
	return cmd
}

// newNotifyRelayCmd runs a leaf that speaks sd_notify as the main process of
// a Type=notify systemd unit (systemd.Relay).
func newNotifyRelayCmd(*app) *cobra.Command {
	var o systemd.RelayOptions
	var readiness string
	cmd := &cobra.Command{
		Use:    "notify-relay [--healthcheck HC --readiness-timeout D [--leaf-health]] -- LEAF [ARG...]",
		Short:  "Run a leaf under a systemd Type=notify unit, ready once healthy",
		Args:   cobra.MinimumNArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := spec.ParseDuration(readiness)
			if err != nil {
				return fmt.Errorf("--readiness-timeout: %w", err)
			}
			o.Readiness, o.Log = d, cmd.ErrOrStderr()
			code, err := systemd.Relay(cmd.Context(), args, o)
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Healthcheck, "healthcheck", "", "HEALTHCHECK that gates READY=1")
	cmd.Flags().BoolVar(&o.LeafHealth, "leaf-health", false, "the leaf reports the HEALTHCHECK verdict (X_ORCHD_HEALTH)")
	cmd.Flags().StringVar(&readiness, "readiness-timeout", string(spec.DefaultReadinessTimeout), "READINESS_TIMEOUT")
	return cmd
}
