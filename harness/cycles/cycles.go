package cycles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/procfs"
	"github.com/orchd/orchd/orchd/supervise"
)

// Inspector counts what a namespace leaked after fell; report is human readable.
type Inspector func(ctx context.Context) (count int, report string, err error)

// Options configure Run.
type Options struct {
	CLI
	// Services per cycle (default 6) and Cycles (default 5).
	Services int
	Cycles   int
	// Image is the FROM value of the probe image (a local OCI layout reference).
	Image string
	// Command is the CMD each service runs (default "sleep forever").
	Command string
	// Orchfile, when set, replaces the generated Orchfile; it must declare
	// exactly Services long-running services.
	Orchfile string
	// Inspect is the leak check after each fell; required.
	Inspect Inspector
	// RunningTimeout bounds grow-to-running (default 2m); FellTimeout bounds fell (default 2m).
	RunningTimeout time.Duration
	FellTimeout    time.Duration
	// TimeoutStart, when set, is every generated service's TIMEOUT_START (a
	// slow machine, e.g. a VM under TCG, needs more than the default 90s).
	TimeoutStart time.Duration
	// Progress receives one line per phase; nil = silent.
	Progress io.Writer
	// KillRandom, when set, picks one supervisor or containerd-run leaf of the
	// state dir each cycle, once all run, and SIGKILLs it before the fell.
	KillRandom *rand.Rand
	// AfterCycle, when set, runs after each cycle's leak check (a soak samples
	// resources there); an error ends the run and is recorded in the cycle.
	AfterCycle func(ctx context.Context, c *Cycle) error
	// Until, when set, starts no cycle after this time: a run bounded by a
	// wall-clock budget ends early, with every cycle it ran complete.
	Until time.Time
}

// Cycle is one grow / running / fell / inspect round.
type Cycle struct {
	N             int           `json:"n"`
	GrowToRunning time.Duration `json:"grow_to_running_ns"`
	FellToSettled time.Duration `json:"fell_to_settled_ns"`
	Running       int           `json:"running"`
	Services      int           `json:"services"`
	Leaks         int           `json:"leaks"`
	LeakReport    string        `json:"leak_report,omitempty"`
	Killed        string        `json:"killed,omitempty"`
	Error         string        `json:"error,omitempty"`
}

// OK says the cycle had every service running and nothing leaked.
func (c Cycle) OK() bool { return c.Error == "" && c.Running == c.Services && c.Leaks == 0 }

// Result is every cycle of a run.
type Result struct {
	Services int     `json:"services"`
	Cycles   []Cycle `json:"cycles"`
}

// OK says every cycle was OK.
func (r *Result) OK() bool {
	for _, c := range r.Cycles {
		if !c.OK() {
			return false
		}
	}
	return len(r.Cycles) > 0
}

// Orchfile renders the Orchfile of one cycle: n probe services.
func Orchfile(image, command string, n int) string { return orchfile(image, command, n, 0) }

// orchfile renders n probe services, each with timeoutStart as its
// TIMEOUT_START when it is set.
func orchfile(image, command string, n int, timeoutStart time.Duration) string {
	var b strings.Builder
	b.WriteString("# stress cycle: probe services that run until felled\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "\nSERVICE svc-%02d\nFROM %s\nCMD %s\nTIMEOUT_STOP 2s\n", i, image, command)
		if timeoutStart > 0 {
			fmt.Fprintf(&b, "TIMEOUT_START %s\n", timeoutStart)
		}
	}
	return b.String()
}

// Run performs the cycles. It returns an error only when it could not run at
// all; per-cycle failures are in Result (a failed cycle ends the run, because
// what it left behind would be counted again by the next one).
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Services <= 0 {
		opts.Services = 6
	}
	if opts.Cycles <= 0 {
		opts.Cycles = 5
	}
	if opts.Command == "" {
		opts.Command = "sleep forever"
	}
	if opts.RunningTimeout <= 0 {
		opts.RunningTimeout = 2 * time.Minute
	}
	if opts.FellTimeout <= 0 {
		opts.FellTimeout = 2 * time.Minute
	}
	switch {
	case opts.Inspect == nil:
		return nil, errors.New("cycles: no leak inspector")
	case opts.Image == "":
		return nil, errors.New("cycles: no image")
	case opts.Orchd == "" || opts.Address == "" || opts.Namespace == "" || opts.StateDir == "" || opts.ProjectDir == "":
		return nil, errors.New("cycles: orchd, address, namespace, state dir and project dir are required")
	}
	text := opts.Orchfile
	if text == "" {
		text = orchfile(opts.Image, opts.Command, opts.Services, opts.TimeoutStart)
	}
	if err := opts.WriteOrchfile(text); err != nil {
		return nil, err
	}
	res := &Result{Services: opts.Services}
	for i := 1; i <= opts.Cycles; i++ {
		if !opts.Until.IsZero() && time.Now().After(opts.Until) {
			opts.progressf("cycles: time budget reached after %d of %d cycles", i-1, opts.Cycles)
			break
		}
		c := runCycle(ctx, opts, i)
		res.Cycles = append(res.Cycles, c)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if !c.OK() {
			break
		}
	}
	return res, nil
}

func (o Options) progressf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

func runCycle(ctx context.Context, o Options, n int) Cycle {
	c := Cycle{N: n, Services: o.Services}
	fail := func(err error) Cycle {
		c.Error = err.Error()
		o.progressf("cycle %d: %v", n, err)
		return c
	}
	o.progressf("cycle %d: grow %d services", n, o.Services)
	start := time.Now()
	res, err := o.Run(ctx, "grow")
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		c.Error = fmt.Sprintf("grow: %v", err)
		o.progressf("cycle %d: %s", n, c.Error)
		// Still fell, so the next caller finds a clean namespace.
		_, _ = o.Run(context.WithoutCancel(ctx), "fell")
		return c
	}
	running, err := waitRunning(ctx, o)
	c.Running = running
	c.GrowToRunning = time.Since(start)
	if err != nil {
		c.Error = fmt.Sprintf("wait running: %v", err)
		o.progressf("cycle %d: %s", n, c.Error)
	} else {
		o.progressf("cycle %d: %d/%d running after %s", n, running, o.Services, c.GrowToRunning.Round(time.Millisecond))
	}

	if o.KillRandom != nil && err == nil {
		c.Killed = killRandom(o)
		o.progressf("cycle %d: SIGKILL %s", n, c.Killed)
	}

	fellStart := time.Now()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.FellTimeout)
	res, ferr := o.Run(fctx, "fell")
	cancel()
	if ferr == nil {
		ferr = res.Err()
	}
	c.FellToSettled = time.Since(fellStart)
	if ferr != nil {
		return fail(fmt.Errorf("fell: %w", ferr))
	}
	o.progressf("cycle %d: felled in %s", n, c.FellToSettled.Round(time.Millisecond))

	count, report, err := o.Inspect(context.WithoutCancel(ctx))
	if err != nil {
		return fail(fmt.Errorf("leak inspection: %w", err))
	}
	c.Leaks = count
	if count > 0 {
		c.LeakReport = report
		o.progressf("cycle %d: %d leaked objects\n%s", n, count, report)
	}
	if o.AfterCycle != nil {
		if err := o.AfterCycle(ctx, &c); err != nil {
			return fail(err)
		}
	}
	return c
}

// killRandom SIGKILLs one supervisor or leaf of the state dir (not a
// supervisor's init; under orchd's own platform a container service's
// supervisor is its leaf too, the containerd agent's client) and says which.
func killRandom(o Options) string {
	procs, err := procfs.Processes()
	if err != nil {
		return "nothing (" + err.Error() + ")"
	}
	var pick []procfs.Proc
	for _, p := range procs {
		line := p.Cmdline()
		if !strings.Contains(line, o.StateDir) || slices.Contains(p.Argv, "--init") {
			continue
		}
		if slices.Contains(p.Argv, "supervise") || slices.Contains(p.Argv, "containerd-run") {
			pick = append(pick, p)
		}
	}
	if len(pick) == 0 {
		return "nothing (no orchd process found)"
	}
	p := pick[o.KillRandom.IntN(len(pick))]
	_ = syscall.Kill(p.Pid, syscall.SIGKILL)
	role := "supervisor"
	if slices.Contains(p.Argv, "containerd-run") {
		role = "leaf"
	}
	return fmt.Sprintf("%s %d", role, p.Pid)
}

// waitRunning polls survey until every service is running with a RUNNING
// task. A survey runs only once the status files say every service runs (a
// read of N small files, where a survey is an exec and N containerd round
// trips): survey then checks what containerd says of each task.
func waitRunning(ctx context.Context, o Options) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, o.RunningTimeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last []platform.ServiceStatus
	for {
		if o.StateDir == "" || runningFiles(o.CLI) >= o.Services {
			rows, err := o.Survey(ctx)
			if err == nil {
				last = rows
				if n := countRunning(rows); n == o.Services {
					return n, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last, _ = o.Survey(context.WithoutCancel(ctx))
			}
			return countRunning(last), fmt.Errorf("%d/%d running after %s: %s", countRunning(last), o.Services, o.RunningTimeout, describe(last))
		case <-tick.C:
		}
	}
}

// runningFiles counts the namespace's services whose status file says running.
func runningFiles(c CLI) int {
	l := contract.Layout{StateDir: c.StateDir}
	ents, err := os.ReadDir(l.StatusDir())
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, c.Namespace+".") || !strings.HasSuffix(name, ".json") {
			continue
		}
		if st, err := supervise.ReadStatus(filepath.Join(l.StatusDir(), name)); err == nil && st.State == contract.StateRunning {
			n++
		}
	}
	return n
}

func countRunning(rows []platform.ServiceStatus) int {
	n := 0
	for _, r := range rows {
		if r.State == "running" && strings.EqualFold(r.TaskStatus, "running") {
			n++
		}
	}
	return n
}

func describe(rows []platform.ServiceStatus) string {
	var parts []string
	for _, r := range rows {
		s := fmt.Sprintf("%s=%s", r.Name, r.State)
		if r.TaskStatus != "" {
			s += "/" + r.TaskStatus
		}
		if r.Message != "" {
			s += " (" + r.Message + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// WriteTable prints one row per cycle, the means and every leak report.
func (res *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CYCLE\tRUNNING\tGROW->RUNNING\tFELL->SETTLED\tLEAKS\tRESULT")
	var grow, fell time.Duration
	for _, c := range res.Cycles {
		r := "ok"
		if !c.OK() {
			r = "FAIL"
			if c.Error != "" {
				r += ": " + firstLine(c.Error)
			}
		}
		fmt.Fprintf(tw, "%d\t%d/%d\t%s\t%s\t%d\t%s\n", c.N, c.Running, c.Services,
			c.GrowToRunning.Round(time.Millisecond), c.FellToSettled.Round(time.Millisecond), c.Leaks, r)
		grow += c.GrowToRunning
		fell += c.FellToSettled
	}
	if n := len(res.Cycles); n > 0 {
		fmt.Fprintf(tw, "mean\t\t%s\t%s\t\t\n", (grow / time.Duration(n)).Round(time.Millisecond), (fell / time.Duration(n)).Round(time.Millisecond))
	}
	tw.Flush()
	for _, c := range res.Cycles {
		if c.Leaks > 0 {
			fmt.Fprintf(w, "cycle %d leaked:\n%s\n", c.N, c.LeakReport)
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
