package bench

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

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/toolchain"
)

// Format is how Main prints a result.
type Format int

const (
	FormatTable    Format = iota // METRIC ORCHD MIN MAX ... columns
	FormatJSON                   // the Result (or ScaleResult) as JSON
	FormatMarkdown               // the table docs/performance.md holds
)

// Setup is what `orchd-harness bench` prepares before measuring.
type Setup struct {
	Options           // what is measured (Services, Rounds, ...); Main fills in the rest
	Format     Format // how the result is printed
	Scale      []int  // measure the scale curve at these N instead of the benchmark
	ReportDir  string // where Scale writes scale.svg and scale.json
	Containerd string // toolchain of the private containerd (toolchain.Rule)
	Keep       bool   // keep the work dir (logs of every grove)
	Command    string // the command line, as printed in the markdown report
}

// Main builds orchd (unless Options.Orchd names a prebuilt one) and the probe
// image, starts a private containerd and runs the benchmark, or the scale
// curve, on it; the result goes to stdout, progress to progress.
func Main(ctx context.Context, s Setup, stdout, progress io.Writer) (err error) {
	work, err := os.MkdirTemp("", "orchd-bench-")
	if err != nil {
		return err
	}
	if !s.Keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Fprintf(progress, "work dir: %s\n", work)
	}
	opts := s.Options
	fmt.Fprintf(progress, "toolchain: %s\n", toolchain.Rule(s.Containerd))
	tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: s.Containerd, Progress: progress})
	if err != nil {
		return err
	}
	fmt.Fprintln(progress, "building orchd and the probe image...")
	root, err := gobuild.ModuleRoot(ctx)
	if err != nil {
		return err
	}
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

	if len(s.Scale) > 0 {
		return mainScale(ctx, s, opts, stdout, progress)
	}
	res, err := Run(ctx, opts)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	fmt.Fprintf(progress, "done in %.0f s\n", res.Seconds)
	switch s.Format {
	case FormatJSON:
		return encodeJSON(stdout, res)
	case FormatMarkdown:
		Markdown(stdout, res, s.Command)
	default:
		res.WriteTable(stdout)
	}
	return nil
}

// mainScale measures the scale curve and writes scale.json beside the plot.
func mainScale(ctx context.Context, s Setup, opts Options, stdout, progress io.Writer) error {
	res, err := Scale(ctx, opts, s.Scale, s.ReportDir)
	if err != nil {
		return fmt.Errorf("bench --scale: %w", err)
	}
	if err := writeJSONFile(filepath.Join(s.ReportDir, "scale.json"), res); err != nil {
		return err
	}
	fmt.Fprintf(progress, "wrote %s\n", res.Plot)
	switch s.Format {
	case FormatJSON:
		return encodeJSON(stdout, res)
	case FormatMarkdown:
		ScaleMarkdown(stdout, res, s.Command, filepath.Base(res.Plot))
	default:
		ScaleMarkdown(stdout, res, s.Command, res.Plot)
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

// WriteTable prints one row per metric, with its side baselines under it.
func (r *Result) WriteTable(w io.Writer) {
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
