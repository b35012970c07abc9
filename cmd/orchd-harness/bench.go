package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/bench"
	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/toolchain"
)

func newBenchCmd() *cobra.Command {
	var (
		asJSON     bool
		opts       bench.Options
		containerd string
		keep       bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure orchd against ctr on one private containerd (medians and ratios)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			progress := cmd.ErrOrStderr()
			work, err := os.MkdirTemp("", "orchd-bench-")
			if err != nil {
				return err
			}
			if !keep {
				defer os.RemoveAll(work)
			}
			fmt.Fprintln(progress, "staging the toolchain...")
			tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: containerd, Progress: progress})
			if err != nil {
				return err
			}
			fmt.Fprintln(progress, "building orchd and the probe image...")
			root, err := images.FindModuleRoot(ctx)
			if err != nil {
				return err
			}
			if opts.Orchd, err = gobuild.Orchd(ctx, root, work); err != nil {
				return err
			}
			set, err := images.Build(ctx, filepath.Join(work, "images"), images.WithNames(images.Probe))
			if err != nil {
				return err
			}
			if opts.Image, err = set.Get(images.Probe); err != nil {
				return err
			}
			fmt.Fprintf(progress, "starting a private containerd (%s %s)...\n", tc.Name, tc.Containerd.Version)
			d, err := daemon.Start(ctx, tc, daemon.Options{})
			if err != nil {
				return err
			}
			defer d.Stop(context.WithoutCancel(ctx))
			opts.Ctr, opts.Address, opts.Root, opts.State, opts.DaemonPid = tc.Ctr.Path, d.Address(), d.Root(), d.State(), d.Pid()
			opts.WorkDir, opts.Progress = filepath.Join(work, "groves"), progress
			start := time.Now()
			res, err := bench.Run(ctx, opts)
			if err != nil {
				return err
			}
			fmt.Fprintf(progress, "done in %s\n", time.Since(start).Round(time.Second))
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printBench(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print {"metrics": [{name, orchd, baseline, ratio, unit}]}`)
	cmd.Flags().IntVar(&opts.Services, "services", 24, "fan-out width N")
	cmd.Flags().IntVar(&opts.Rounds, "rounds", 5, "rounds per metric")
	cmd.Flags().StringVar(&containerd, "containerd", "", "toolchain: system or vX.Y.Z (default: the pinned 2.x when staged)")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the work dir (logs of every grove)")
	return cmd
}

func printBench(w io.Writer, r *bench.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tORCHD\tBASELINE\tRATIO\tUNIT\tBASELINE IS")
	for _, m := range r.Metrics {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.2fx\t%s\t%s\n", m.Name, m.Orchd, m.Baseline, m.Ratio, m.Unit, m.Against)
	}
	tw.Flush()
}
