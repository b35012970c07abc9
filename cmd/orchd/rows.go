package main

import (
	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/orchard"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/spec"
)

// parseSpec parses FILES (or, without arguments, the configured Orchfile and overlays).
func (a *app) parseSpec(files []string) (*spec.Spec, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	return orchard.ParseSpec(cfg, files, a.stderr)
}

func newParseCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "parse [FILE [OVERLAY...]]",
		Short: "Parse an Orchfile and its overlays; print the Spec JSON",
		Long: "Parse an Orchfile and its overlays (left to right) and print the merged Spec JSON.\n" +
			"Without FILE, the configured Orchfile (--orchfile, ORCH_ORCHFILE, <project>/Orchfile) and overlays are used.\n" +
			"On error every problem is printed as FILE:LINE: message and the exit status is 1.",
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.parseSpec(args)
			if err != nil {
				return err
			}
			return orchard.WriteJSON(cmd.OutOrStdout(), s)
		},
	}
}

func newValidateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [FILE [OVERLAY...]]",
		Short: "Check an Orchfile and its overlays; print only errors and warnings",
		Long: "Check an Orchfile and its overlays. Errors are printed as FILE:LINE: message and\n" +
			"the exit status is 1; warnings (an --arg no ARG declares, AFTER naming no service)\n" +
			"go to stderr and leave the status 0 (-q drops them). A clean Orchfile prints nothing.",
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := a.parseSpec(args)
			return err
		},
	}
}

func newSowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "sow",
		Short: "Spec JSON on stdin -> Cuttings JSON for a runtime (--runtime)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			s, err := orchard.ReadSpec(cmd.InOrStdin())
			if err != nil {
				return err
			}
			rt, err := orchard.RuntimeFor(cfg)
			if err != nil {
				return err
			}
			env, err := orchard.EnvFor(cfg)
			if err != nil {
				return err
			}
			c, err := orchard.Sow(s, rt, env)
			if err != nil {
				return err
			}
			return orchard.WriteJSON(cmd.OutOrStdout(), c)
		},
	}
}

func newPlantCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "plant",
		Short: "Cuttings JSON on stdin -> Beds JSON for a platform (--platform)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			c, err := orchard.ReadCuttings(cmd.InOrStdin())
			if err != nil {
				return err
			}
			// The namespace and state dir of the rows follow the flags given to plant.
			if cmd.Flags().Changed("namespace") || c.Env.Namespace == "" {
				c.Env.Namespace = cfg.Namespace
			}
			if err := orchard.CheckNamespace("Cuttings", c.Env.Namespace); err != nil {
				return err
			}
			if cmd.Flags().Changed("state-dir") || c.Env.StateDir == "" {
				c.Env.StateDir = cfg.StateDir
			}
			p, err := orchard.Platform(cfg.Platform, cfg.Scope)
			if err != nil {
				return err
			}
			b, err := orchard.Plant(c, p, cfg.Scope)
			if err != nil {
				return err
			}
			return orchard.WriteJSON(cmd.OutOrStdout(), b)
		},
	}
}

func newTendCmd(a *app) *cobra.Command {
	var noStart bool
	cmd := &cobra.Command{
		Use:   "tend [SERVICE...]",
		Short: "Beds JSON on stdin -> files written, supervisors started",
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := orchard.ReadBeds(cmd.InOrStdin())
			if err != nil {
				return err
			}
			p, err := orchard.Platform(b.Platform, b.Scope)
			if err != nil {
				return err
			}
			_, err = p.Tend(cmd.Context(), *b, platform.TendOptions{NoStart: noStart, Only: args, Log: cmd.ErrOrStderr()})
			return err
		},
	}
	cmd.Flags().BoolVar(&noStart, "no-start", false, "write and install, but start nothing")
	return cmd
}
