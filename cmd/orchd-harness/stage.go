package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/toolchain"
)

func newStageCmd() *cobra.Command {
	var (
		opts   toolchain.Options
		all    bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stage",
		Short: "Locate or build the containerd toolchain and print its components",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Progress = cmd.ErrOrStderr()
			var tcs []*toolchain.Toolchain
			if all {
				var err error
				if tcs, err = toolchain.Available(cmd.Context(), opts); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "toolchain: %s\n", toolchain.Rule(opts.Containerd))
				tc, err := toolchain.Resolve(cmd.Context(), opts)
				if err != nil {
					return err
				}
				tcs = []*toolchain.Toolchain{tc}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if all {
					return enc.Encode(tcs)
				}
				return enc.Encode(tcs[0])
			}
			return toolchain.WriteTable(cmd.OutOrStdout(), tcs)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "build cache dir (default $XDG_CACHE_HOME/orchd-harness/toolchain)")
	containerdFlag(cmd.Flags(), &opts.Containerd)
	cmd.Flags().BoolVar(&all, "all", false, "list every toolchain present (no build)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
