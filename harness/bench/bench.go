// Package bench measures orchd against the floor on one private containerd:
// the same daemon, image and container options, driven by (a) one process
// holding one containerd v2 client that creates, starts, kills and deletes N
// containers concurrently (the in-process floor), (b) N concurrent `ctr run -d`
// and (c) a sequential `ctr run -d` loop. The contenders alternate round by
// round, in a rotating order, so drift in the machine's load touches all alike.
// Every figure is a median over every round, with its min and max.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/leaks"
)

// Options configure a benchmark run.
type Options struct {
	Orchd     string // orchd binary (orchd-supervise beside it)
	Ctr       string // ctr binary
	Address   string // containerd socket
	Root      string // daemon root and state, for the leak check after each fell
	State     string
	DaemonPid int // containerd's pid, for its RSS
	Image     images.Layout
	Services  int // fan-out width N (default 24)
	Rounds    int // rounds of fan-out and teardown (default 5)
	// SingleRounds is the number of single-start rounds (default 10).
	SingleRounds int
	// Restarts is how many crash-restart intervals are observed (default 6).
	Restarts int
	WorkDir  string
	Progress io.Writer
	// Toolchain describes the daemon's components, for the report.
	Toolchain string
}

// Metric is one measured quantity. Orchd, Min and Max summarise orchd's rounds;
// Baseline is the median of the baseline's rounds (or, when Target is set, a
// constant goal that was not measured). Ratio is Orchd / Baseline: lower is better.
type Metric struct {
	Name        string  `json:"name"`
	Unit        string  `json:"unit"`
	Orchd       float64 `json:"orchd"`
	Min         float64 `json:"min"`
	Max         float64 `json:"max"`
	Baseline    float64 `json:"baseline"`
	BaselineMin float64 `json:"baseline_min"`
	BaselineMax float64 `json:"baseline_max"`
	Against     string  `json:"against"`
	Target      bool    `json:"target"`
	Ratio       float64 `json:"ratio"`
	// RatioTarget is the ratio orchd should stay at or below (0: none set).
	RatioTarget float64 `json:"ratio_target,omitempty"`
	Rounds      int     `json:"rounds"`
	// Beside are the other measured baselines, printed beside the main one.
	Beside []Side `json:"beside,omitempty"`
}

// Side is a further baseline: its median, spread and orchd's ratio to it.
type Side struct {
	Against string  `json:"against"`
	Median  float64 `json:"median"`
	Min     float64 `json:"min"`
	Max     float64 `json:"max"`
	Ratio   float64 `json:"ratio"`
}

// Result is a whole run.
type Result struct {
	Services int      `json:"services"`
	Rounds   int      `json:"rounds"`
	Env      Env      `json:"env"`
	Metrics  []Metric `json:"metrics"`
	Seconds  float64  `json:"seconds"`
}

// namespaces of the contenders; each holds its own copy of the image. They
// carry the bench's pid: runc's state (/run/containerd/runc/<ns>/<id>) and
// cgroups (/<ns>/<id>) are per host, and two runs at once must not collide.
type nsSet struct{ orchd, floor, ctr string }

func newNSSet() nsSet {
	pid := os.Getpid()
	return nsSet{fmt.Sprintf("orchdbench-%d", pid), fmt.Sprintf("floorbench-%d", pid), fmt.Sprintf("ctrbench-%d", pid)}
}

// Names of the baselines, as printed.
const (
	FloorName  = "in-process floor (one v2 client, N concurrent create+start / kill+delete)"
	CtrParName = "N concurrent `ctr run -d`"
	CtrSeqName = "sequential `ctr run -d`"
)

type runner struct {
	opts   Options
	ns     nsSet
	client *containerd.Client
	seq    int
	// baseline is the orchd namespace after the image import: its image and
	// unpacked layers are the fixture, not leaks.
	baseline *leaks.Report
}

func (o *Options) defaults() {
	if o.Services <= 0 {
		o.Services = 24
	}
	if o.Rounds <= 0 {
		o.Rounds = 5
	}
	if o.SingleRounds <= 0 {
		o.SingleRounds = 10
	}
	if o.Restarts <= 0 {
		o.Restarts = 6
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

func newRunner(ctx context.Context, opts Options) (*runner, error) {
	c, err := containerd.New(opts.Address)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", opts.Address, err)
	}
	r := &runner{opts: opts, client: c, ns: newNSSet()}
	for _, ns := range []string{r.ns.orchd, r.ns.floor, r.ns.ctr} {
		if err := r.importImage(ctx, ns); err != nil {
			c.Close()
			return nil, err
		}
	}
	if r.baseline, err = leaks.Inspect(ctx, r.leakTarget("")); err != nil {
		c.Close()
		return nil, err
	}
	if err := os.MkdirAll(opts.WorkDir, 0o700); err != nil {
		c.Close()
		return nil, err
	}
	return r, nil
}

// Run measures every metric and returns them in a fixed order. It fails when
// any metric is missing or not a finite number.
func Run(ctx context.Context, opts Options) (*Result, error) {
	opts.defaults()
	start := time.Now()
	env := probeEnv(ctx, opts)
	r, err := newRunner(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer r.client.Close()
	env.Containerd = r.daemonVersion(ctx)
	res := &Result{Services: opts.Services, Rounds: opts.Rounds}
	steps := []func(context.Context) ([]Metric, error){r.fanout, r.single, r.cadence, r.parse}
	for _, step := range steps {
		ms, err := step(ctx)
		if err != nil {
			return res, err
		}
		res.Metrics = append(res.Metrics, ms...)
	}
	env.finish()
	res.Env, res.Seconds = env, time.Since(start).Seconds()
	return res, Check(res.Metrics)
}

// Check reports metrics whose figures are missing or not finite.
func Check(ms []Metric) error {
	if len(ms) == 0 {
		return errors.New("bench: no metrics")
	}
	var errs []error
	for _, m := range ms {
		vals := map[string]float64{"orchd": m.Orchd, "min": m.Min, "max": m.Max, "baseline": m.Baseline, "ratio": m.Ratio}
		for k, v := range vals {
			if !finite(v) || v < 0 {
				errs = append(errs, fmt.Errorf("metric %q: %s is %v", m.Name, k, v))
			}
		}
		for _, s := range m.Beside {
			if !finite(s.Median) || !finite(s.Ratio) {
				errs = append(errs, fmt.Errorf("metric %q: %s is %v", m.Name, s.Against, s.Median))
			}
		}
	}
	return errors.Join(errs...)
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.opts.Progress, format+"\n", args...)
}

func (r *runner) daemonVersion(ctx context.Context) string {
	v, err := r.client.Version(ctx)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return v.Version
}

// importImage puts the fixture image into ns, unpacked, so no contender measures a pull.
func (r *runner) importImage(ctx context.Context, ns string) error {
	ctx = namespaces.WithNamespace(ctx, ns)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(images.WriteTar(r.opts.Image.Dir, pw)) }()
	imgs, err := r.client.Import(ctx, pr)
	pr.Close()
	if err != nil {
		return fmt.Errorf("import %s into %s: %w", r.opts.Image.Dir, ns, err)
	}
	for _, i := range imgs {
		if err := containerd.NewImage(r.client, i).Unpack(ctx, ""); err != nil {
			return fmt.Errorf("unpack %s in %s: %w", i.Name, ns, err)
		}
	}
	return nil
}

func (r *runner) leakTarget(stateDir string) leaks.Target {
	return leaks.Target{Address: r.opts.Address, Namespace: r.ns.orchd, Root: r.opts.Root, State: r.opts.State, OrchdStateDir: stateDir}
}

func (r *runner) next() int { r.seq++; return r.seq }

func (r *runner) dir(name string) string { return filepath.Join(r.opts.WorkDir, name) }

// measured builds a metric against a measured baseline.
func measured(name, unit string, orchd, base Stat, against string, rounds int, beside ...Side) Metric {
	m := Metric{Name: name, Unit: unit, Orchd: orchd.Median, Min: orchd.Min, Max: orchd.Max,
		Baseline: base.Median, BaselineMin: base.Min, BaselineMax: base.Max, Against: against, Rounds: rounds, Beside: beside}
	m.Ratio = ratio(orchd.Median, base.Median)
	for i := range m.Beside {
		m.Beside[i].Ratio = ratio(orchd.Median, m.Beside[i].Median)
	}
	return m
}

// target builds a metric against a constant goal (not a measurement).
func target(name, unit string, orchd Stat, goal float64, against string, rounds int) Metric {
	return Metric{Name: name, Unit: unit, Orchd: orchd.Median, Min: orchd.Min, Max: orchd.Max,
		Baseline: goal, BaselineMin: goal, BaselineMax: goal, Against: against, Target: true,
		Ratio: ratio(orchd.Median, goal), RatioTarget: 1, Rounds: rounds}
}

func side(name string, s Stat) Side {
	return Side{Against: name, Median: s.Median, Min: s.Min, Max: s.Max}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN() // Check reports it
	}
	return a / b
}
