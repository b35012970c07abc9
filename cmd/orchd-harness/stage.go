package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/orchd/orchd/harness/toolchain"
	"github.com/spf13/cobra"
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
			return printToolchains(cmd.OutOrStdout(), tcs)
		},
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "build cache dir (default $XDG_CACHE_HOME/orchd-harness/toolchain)")
	containerdFlag(cmd.Flags(), &opts.Containerd)
	cmd.Flags().BoolVar(&all, "all", false, "list every toolchain present (no build)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printToolchains prints COMPONENT VERSION PATH SOURCE, with a leading
// TOOLCHAIN column when several toolchains are listed.
func printToolchains(w io.Writer, tcs []*toolchain.Toolchain) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	many := len(tcs) > 1
	if many {
		fmt.Fprint(tw, "TOOLCHAIN\t")
	} else {
		fmt.Fprintf(w, "toolchain %s\n", tcs[0].Name)
	}
	fmt.Fprintln(tw, "COMPONENT\tVERSION\tPATH\tSOURCE")
	for _, tc := range tcs {
		for _, c := range tc.Components() {
			if many {
				fmt.Fprintf(tw, "%s\t", tc.Name)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Version, c.Path, c.Source)
		}
	}
	return tw.Flush()
}
