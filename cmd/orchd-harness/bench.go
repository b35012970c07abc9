package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/bench"
	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/toolchain"
)

type benchConfig struct {
	opts       bench.Options
	asJSON     bool
	markdown   bool
	scale      []int
	reportDir  string
	containerd string
	keep       bool
	orchd      string // a prebuilt orchd (default: build ./cmd/orchd)
	command    string // as printed in the report
}

func newBenchCmd() *cobra.Command {
	var c benchConfig
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure orchd against the in-process floor, concurrent and sequential ctr on one private containerd",
		Long: `Measures, on one private containerd with one image and the same container options,
in alternating rounds: orchd; the in-process floor (one containerd v2 client creating,
starting, killing and deleting N containers concurrently); N concurrent ` + "`ctr run -d`" + `;
and sequential ` + "`ctr run -d`" + `. Prints medians with min and max; ratios are orchd / baseline
(lower is better). --scale 1,6,24,48,96 measures orchd and the floor at each N instead and
writes the curve to <report-dir>/scale.svg. A failed run prints why and exits non-zero.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.command = "orchd-harness " + strings.Join(os.Args[1:], " ")
			return runBench(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&c.asJSON, "json", false, `print {"metrics": [{name, orchd, min, max, baseline, ratio, against, ...}]}`)
	f.BoolVar(&c.markdown, "markdown", false, "print the table docs/performance.md holds, with machine, toolchain and date")
	f.IntSliceVar(&c.scale, "scale", nil, "measure fan-out and teardown at each N (e.g. 1,6,24,48,96) and plot the curve")
	f.StringVar(&c.reportDir, "report-dir", "reports", "where --scale writes scale.svg and scale.json")
	f.IntVar(&c.opts.Services, "services", 24, "fan-out width N")
	f.IntVar(&c.opts.Rounds, "rounds", 5, "rounds per contender (fan-out, teardown, memory; per N with --scale)")
	f.IntVar(&c.opts.SingleRounds, "single-rounds", 10, "rounds of single start")
	f.IntVar(&c.opts.Restarts, "restarts", 6, "crash-restart intervals observed")
	containerdFlag(f, &c.containerd)
	f.BoolVar(&c.keep, "keep", false, "keep the work dir (logs of every grove)")
	f.StringVar(&c.orchd, "orchd", "", "a prebuilt CGO_ENABLED=0 orchd with orchd-supervise beside it (default: build ./cmd/orchd)")
	return cmd
}

// runBench builds orchd and the probe image, starts a private containerd and
// runs the benchmark (or the scale curve) on it.
func runBench(ctx context.Context, c benchConfig, stdout, progress io.Writer) (err error) {
	if c.asJSON && c.markdown {
		return errors.New("bench: --json and --markdown exclude each other")
	}
	work, err := os.MkdirTemp("", "orchd-bench-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Fprintf(progress, "work dir: %s\n", work)
	}
	opts := c.opts
	fmt.Fprintf(progress, "toolchain: %s\n", toolchain.Rule(c.containerd))
	tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: c.containerd, Progress: progress})
	if err != nil {
		return err
	}
	fmt.Fprintln(progress, "building orchd and the probe image...")
	root, err := images.FindModuleRoot(ctx)
	if err != nil {
		return err
	}
	opts.Orchd = c.orchd
	if opts.Orchd == "" {
		if opts.Orchd, err = gobuild.Orchd(ctx, root, work); err != nil {
			return err
		}
	} else if _, err := os.Stat(filepath.Join(filepath.Dir(opts.Orchd), "orchd-supervise")); err != nil {
		return fmt.Errorf("--orchd %s: no orchd-supervise beside it (build both: CGO_ENABLED=0 go build -o DIR/ ./cmd/orchd ./cmd/orchd-supervise): %w", opts.Orchd, err)
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
	defer func() {
		if serr := d.Stop(context.WithoutCancel(ctx)); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop containerd: %w", serr))
		}
	}()
	opts.Ctr, opts.Address, opts.Root, opts.State, opts.DaemonPid = tc.Ctr.Path, d.Address(), d.Root(), d.State(), d.Pid()
	opts.WorkDir, opts.Progress = filepath.Join(work, "groves"), progress
	var parts []string
	for _, comp := range tc.Components() {
		parts = append(parts, filepath.Base(comp.Path)+" "+comp.Version)
	}
	opts.Toolchain = strings.Join(parts, ", ")

	if len(c.scale) > 0 {
		res, err := bench.Scale(ctx, opts, c.scale, c.reportDir)
		if err != nil {
			return fmt.Errorf("bench --scale: %w", err)
		}
		if err := writeJSONFile(filepath.Join(c.reportDir, "scale.json"), res); err != nil {
			return err
		}
		fmt.Fprintf(progress, "wrote %s\n", res.Plot)
		switch {
		case c.asJSON:
			return encodeJSON(stdout, res)
		case c.markdown:
			bench.ScaleMarkdown(stdout, res, c.command, filepath.Base(res.Plot))
		default:
			bench.ScaleMarkdown(stdout, res, c.command, res.Plot)
		}
		return nil
	}
	res, err := bench.Run(ctx, opts)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	fmt.Fprintf(progress, "done in %.0f s\n", res.Seconds)
	switch {
	case c.asJSON:
		return encodeJSON(stdout, res)
	case c.markdown:
		bench.Markdown(stdout, res, c.command)
	default:
		printBench(stdout, res)
	}
	return nil
}

func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeJSONFile(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := encodeJSON(f, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func printBench(w io.Writer, r *bench.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tORCHD\tMIN\tMAX\tBASELINE\tRATIO\tTARGET\tUNIT\tBASELINE IS")
	for _, m := range r.Metrics {
		goal := "-"
		if m.RatioTarget > 0 {
			goal = fmt.Sprintf("<=%.2f", m.RatioTarget)
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.2fx\t%s\t%s\t%s\n", m.Name, m.Orchd, m.Min, m.Max, m.Baseline, m.Ratio, goal, m.Unit, m.Against)
		for _, s := range m.Beside {
			fmt.Fprintf(tw, "  beside: %s\t\t\t\t%.3f\t%.2fx\t\t%s\t\n", s.Against, s.Median, s.Ratio, m.Unit)
		}
	}
	tw.Flush()
}
