package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/contract"
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
	if len(files) == 0 {
		files = cfg.Files()
	}
	s, err := spec.ParseFiles(files, spec.Options{Args: cfg.Args})
	if err != nil {
		return nil, err
	}
	if !cfg.Quiet {
		for _, w := range orchard.Warnings(cfg, files, s) {
			fmt.Fprintln(a.stderr, "warning:", w)
		}
	}
	return s, nil
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
			return writeJSON(cmd.OutOrStdout(), s)
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
			var s spec.Spec
			if err := readJSON(cmd.InOrStdin(), "Spec", &s); err != nil {
				return err
			}
			if s.Version != spec.Version {
				return fmt.Errorf("stdin: Spec version %q: this orchd reads %q (produce it with `orchd parse`)", s.Version, spec.Version)
			}
			// A spliced Spec bypasses the parser: names become paths and labels.
			for _, svc := range s.Services {
				if !spec.ValidServiceName(svc.Name) {
					return fmt.Errorf("stdin: Spec service name %q is invalid: want a lowercase letter, then lowercase letters, digits or -, at most 63 characters", svc.Name)
				}
			}
			rt, err := orchard.RuntimeFor(cfg)
			if err != nil {
				return err
			}
			env, err := orchard.EnvFor(cfg)
			if err != nil {
				return err
			}
			c, err := orchard.Sow(&s, rt, env)
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), c)
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
			var c contract.Cuttings
			if err := readJSON(cmd.InOrStdin(), "Cuttings", &c); err != nil {
				return err
			}
			if c.Version != contract.Version {
				return fmt.Errorf("stdin: Cuttings version %q: this orchd reads %q (produce it with `orchd sow`)", c.Version, contract.Version)
			}
			// The namespace and state dir of the rows follow the flags given to plant.
			if cmd.Flags().Changed("namespace") || c.Env.Namespace == "" {
				c.Env.Namespace = cfg.Namespace
			}
			if !config.ValidNamespace(c.Env.Namespace) {
				return fmt.Errorf("stdin: Cuttings namespace %q is invalid: want a DNS label (lowercase letters, digits and -, at most 63)", c.Env.Namespace)
			}
			for _, cut := range c.Cuttings {
				if !spec.ValidServiceName(cut.Service.Name) {
					return fmt.Errorf("stdin: Cuttings service name %q is invalid: want a lowercase letter, then lowercase letters, digits or -, at most 63 characters", cut.Service.Name)
				}
			}
			if cmd.Flags().Changed("state-dir") || c.Env.StateDir == "" {
				c.Env.StateDir = cfg.StateDir
			}
			p, err := orchard.Platform(cfg.Platform, cfg.Scope)
			if err != nil {
				return err
			}
			b, err := orchard.Plant(&c, p, cfg.Scope)
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), b)
		},
	}
}

func newTendCmd(a *app) *cobra.Command {
	var noStart bool
	cmd := &cobra.Command{
		Use:   "tend [SERVICE...]",
		Short: "Beds JSON on stdin -> files written, supervisors started",
		RunE: func(cmd *cobra.Command, args []string) error {
			var b contract.Beds
			if err := readJSON(cmd.InOrStdin(), "Beds", &b); err != nil {
				return err
			}
			if b.Version != contract.Version {
				return fmt.Errorf("stdin: Beds version %q: this orchd reads %q (produce it with `orchd plant`)", b.Version, contract.Version)
			}
			p, err := orchard.Platform(b.Platform, b.Scope)
			if err != nil {
				return err
			}
			_, err = p.Tend(cmd.Context(), b, platform.TendOptions{NoStart: noStart, Only: args, Log: cmd.ErrOrStderr()})
			return err
		},
	}
	cmd.Flags().BoolVar(&noStart, "no-start", false, "write and install, but start nothing")
	return cmd
}

// readJSON decodes one JSON document from r, naming the row in errors.
func readJSON(r io.Reader, what string, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("stdin: no %s JSON (pipe one in, e.g. `orchd parse Orchfile | orchd sow`)", what)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("stdin: %s JSON is malformed at byte %d: %v", what, se.Offset, err)
		}
		return fmt.Errorf("stdin: %s JSON: %w", what, err)
	}
	if dec.More() {
		return fmt.Errorf("stdin: trailing data after the %s JSON document", what)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
