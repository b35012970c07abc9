package main

import (
	"errors"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		s                bench.Setup
		asJSON, markdown bool
	)
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
			switch {
			case asJSON && markdown:
				return errors.New("bench: --json and --markdown exclude each other")
			case asJSON:
				s.Format = bench.FormatJSON
			case markdown:
				s.Format = bench.FormatMarkdown
			}
			s.Command = "orchd-harness " + strings.Join(os.Args[1:], " ")
			return bench.Main(cmd.Context(), s, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, `print {"metrics": [{name, orchd, min, max, baseline, ratio, against, ...}]}`)
	f.BoolVar(&markdown, "markdown", false, "print the table docs/performance.md holds, with machine, toolchain and date")
	f.IntSliceVar(&s.Scale, "scale", nil, "measure fan-out and teardown at each N (e.g. 1,6,24,48,96) and plot the curve")
	f.StringVar(&s.ReportDir, "report-dir", "reports", "where --scale writes scale.svg and scale.json")
	f.IntVar(&s.Services, "services", 24, "fan-out width N")
	f.IntVar(&s.Rounds, "rounds", 5, "rounds per contender (fan-out, teardown, memory; per N with --scale)")
	f.IntVar(&s.SingleRounds, "single-rounds", 10, "rounds of single start")
	f.IntVar(&s.Restarts, "restarts", 6, "crash-restart intervals observed")
	containerdFlag(f, &s.Containerd)
	f.BoolVar(&s.Keep, "keep", false, "keep the work dir (logs of every grove)")
	f.StringVar(&s.Orchd, "orchd", "", "a prebuilt CGO_ENABLED=0 orchd with orchd-supervise beside it (default: build ./cmd/orchd)")
	return cmd
}
