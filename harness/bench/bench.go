// Package bench measures orchd against containerd's own client (ctr) on one
// private daemon. The contenders alternate round by round (A B A B ...) so drift
// in the machine's load touches both alike; results are medians and ratios.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/leaks"
)

// Options configure a benchmark run.
type Options struct {
	Orchd     string // orchd binary
	Ctr       string // ctr binary: the baseline client
	Address   string // containerd socket
	Root      string // daemon root and state, for the leak check after each fell
	State     string
	DaemonPid int // containerd's pid, for its memory growth
	Image     images.Layout
	Services  int // fan-out width (default 24)
	Rounds    int // rounds per metric (default 5)
	WorkDir   string
	Progress  io.Writer
}

// Metric is one measured quantity. Ratio = Orchd / Baseline; Against names the baseline.
type Metric struct {
	Name     string  `json:"name"`
	Orchd    float64 `json:"orchd"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"`
	Unit     string  `json:"unit"`
	Against  string  `json:"against"`
}

// Result is a whole run.
type Result struct {
	Services int      `json:"services"`
	Rounds   int      `json:"rounds"`
	Metrics  []Metric `json:"metrics"`
}

const (
	orchdNS = "orchdbench"
	ctrNS   = "ctrbench"
)

type runner struct {
	opts   Options
	client *containerd.Client
	round  int
	// baseline is the orchd namespace after the image import: its image and
	// unpacked layers are the fixture, not leaks.
	baseline *leaks.Report
}

// Run measures every metric and returns them in a fixed order.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Services <= 0 {
		opts.Services = 24
	}
	if opts.Rounds <= 0 {
		opts.Rounds = 5
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	c, err := containerd.New(opts.Address)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", opts.Address, err)
	}
	defer c.Close()
	r := &runner{opts: opts, client: c}
	for _, ns := range []string{orchdNS, ctrNS} {
		if err := r.importImage(ctx, ns); err != nil {
			return nil, err
		}
	}
	if r.baseline, err = leaks.Inspect(ctx, r.leakTarget("")); err != nil {
		return nil, err
	}
	res := &Result{Services: opts.Services, Rounds: opts.Rounds}
	steps := []func(context.Context) ([]Metric, error){r.fanout, r.single, r.cadence, r.parse}
	for _, step := range steps {
		ms, err := step(ctx)
		if err != nil {
			return res, err
		}
		res.Metrics = append(res.Metrics, ms...)
	}
	return res, nil
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.opts.Progress, format+"\n", args...)
}

// importImage puts the fixture image into ns so neither contender measures a pull.
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

// fanout measures start of N tasks and their teardown, for a probe that honors
// SIGTERM and for a PID 1 that ignores it (TIMEOUT_STOP 2s), plus memory.
func (r *runner) fanout(ctx context.Context) ([]Metric, error) {
	n := r.opts.Services
	var startO, startC, downO, downC, downIgnO, downIgnC []float64
	var mem memSample
	var ctrdGrowO, ctrdGrowC []float64
	for i := 0; i < r.opts.Rounds; i++ {
		for _, probe := range []string{"term-exit", "pid1-raw"} {
			before := rssKB(r.opts.DaemonPid)
			up, down, m, err := r.orchdRound(ctx, n, probe, i == 0 && probe == "term-exit")
			if err != nil {
				return nil, err
			}
			if probe == "term-exit" {
				startO = append(startO, up.Seconds())
				downO = append(downO, down.Seconds())
				if m != nil {
					mem = *m
					ctrdGrowO = append(ctrdGrowO, float64(mem.daemonKB-before)/1024)
				}
			} else {
				downIgnO = append(downIgnO, down.Seconds())
			}
			before = rssKB(r.opts.DaemonPid)
			cup, cdown, peak, err := r.ctrRound(ctx, n, probe)
			if err != nil {
				return nil, err
			}
			if probe == "term-exit" {
				startC = append(startC, cup.Seconds())
				downC = append(downC, cdown.Seconds())
				ctrdGrowC = append(ctrdGrowC, float64(peak-before)/1024)
			} else {
				downIgnC = append(downIgnC, cdown.Seconds())
			}
			r.logf("fan-out %d/%d (%s): orchd start %.2fs fell %.2fs | ctr start %.2fs teardown %.2fs",
				i+1, r.opts.Rounds, probe, up.Seconds(), down.Seconds(), cup.Seconds(), cdown.Seconds())
		}
	}
	perSvcPeak := float64(mem.peakKB) / 1024 / float64(n)
	perSvcSteady := float64(mem.steadyKB) / 1024 / float64(n)
	return []Metric{
		metric(fmt.Sprintf("start fan-out, %d tasks to RUNNING", n), median(startO), median(startC), "s", "ctr run -d x N"),
		metric("teardown, SIGTERM-honoring probe", median(downO), median(downC), "s", "ctr task kill + rm x N"),
		metric("teardown, PID 1 ignoring SIGTERM (TIMEOUT_STOP 2s)", median(downIgnO), median(downIgnC), "s", "ctr kill, 2s, kill -9, rm x N"),
		metric("memory per service, peak RSS (supervisor + init + leaf, VmHWM)", perSvcPeak, 15, "MB", "15 MB target"),
		metric("memory per service, steady PSS (supervisor + init + leaf)", perSvcSteady, 15, "MB", "15 MB target"),
		metric(fmt.Sprintf("containerd RSS growth at %d tasks", n), median(ctrdGrowO), median(ctrdGrowC), "MB", "same N via ctr"),
	}, nil
}

// single measures one service from command to RUNNING, p50 and p95.
func (r *runner) single(ctx context.Context) ([]Metric, error) {
	var o, c []float64
	rounds := max(r.opts.Rounds*2, 10)
	for i := 0; i < rounds; i++ {
		up, _, _, err := r.orchdRound(ctx, 1, "term-exit", false)
		if err != nil {
			return nil, err
		}
		cup, _, _, err := r.ctrRound(ctx, 1, "term-exit")
		if err != nil {
			return nil, err
		}
		o, c = append(o, up.Seconds()), append(c, cup.Seconds())
	}
	r.logf("single start: orchd p50 %.3fs | ctr p50 %.3fs (%d rounds)", percentile(o, 50), percentile(c, 50), rounds)
	return []Metric{
		metric("single start latency p50", percentile(o, 50), percentile(c, 50), "s", "ctr run -d"),
		metric("single start latency p95", percentile(o, 95), percentile(c, 95), "s", "ctr run -d"),
	}, nil
}

// cadence measures the observed interval between restarts of a crashing
// container against its RESTART_DELAY.
func (r *runner) cadence(ctx context.Context) ([]Metric, error) {
	const delay = time.Second
	const want = 6
	g := r.newGrove("cadence")
	orchfile := fmt.Sprintf("SERVICE crash\nFROM %s\nCMD exit 3\nRESTART on-failure\nRESTART_DELAY %ds\nSTART_LIMIT_BURST 100\nSTART_LIMIT_INTERVAL 10m\nTIMEOUT_STOP 2s\n",
		r.opts.Image.Ref, int(delay.Seconds()))
	if err := g.write(orchfile); err != nil {
		return nil, err
	}
	defer g.fell(context.WithoutCancel(ctx))
	if _, err := g.orchd(ctx, "grow"); err != nil {
		return nil, err
	}
	var stamps []time.Time
	last := -1
	deadline := time.Now().Add(2 * time.Minute)
	for len(stamps) < want && time.Now().Before(deadline) {
		rows, err := g.survey(ctx)
		if err != nil {
			return nil, err
		}
		if len(rows) == 1 && rows[0].Restarts != last {
			if last >= 0 {
				stamps = append(stamps, time.Now())
			}
			last = rows[0].Restarts
		}
		time.Sleep(10 * time.Millisecond) // polling interval of the observer, not synchronization
	}
	if len(stamps) < 2 {
		return nil, fmt.Errorf("cadence: saw %d restarts in 2 minutes, want %d", len(stamps), want)
	}
	var iv []float64
	for i := 1; i < len(stamps); i++ {
		iv = append(iv, stamps[i].Sub(stamps[i-1]).Seconds())
	}
	if err := g.fell(ctx); err != nil {
		return nil, err
	}
	r.logf("crash-restart cadence: median interval %.3fs for RESTART_DELAY %s", median(iv), delay)
	return []Metric{metric("crash-restart interval (RESTART_DELAY 1s)", median(iv), delay.Seconds(), "s", "RESTART_DELAY")}, nil
}

// orchdRound grows n services, waits for n RUNNING tasks, then fells and checks
// for leaks. With sampleMem it also measures orchd's per-service processes.
func (r *runner) orchdRound(ctx context.Context, n int, probe string, sampleMem bool) (up, down time.Duration, mem *memSample, err error) {
	g := r.newGrove(fmt.Sprintf("o%d", r.next()))
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "SERVICE s%02d\nFROM %s\nCMD %s\nTIMEOUT_STOP 2s\n\n", i, r.opts.Image.Ref, probe)
	}
	if err := g.write(b.String()); err != nil {
		return 0, 0, nil, err
	}
	defer func() {
		if err != nil {
			g.fell(context.WithoutCancel(ctx))
		}
	}()
	t0 := time.Now()
	if _, err := g.orchd(ctx, "grow"); err != nil {
		return 0, 0, nil, err
	}
	if err := r.waitRunning(ctx, orchdNS, n); err != nil {
		return 0, 0, nil, err
	}
	up = time.Since(t0)
	if sampleMem {
		mem = sampleProcs(g.state, r.opts.DaemonPid)
	}
	t0 = time.Now()
	if err := g.fell(ctx); err != nil {
		return 0, 0, nil, err
	}
	down = time.Since(t0)
	after, err := leaks.Inspect(ctx, r.leakTarget(g.state))
	if err != nil {
		return 0, 0, nil, err
	}
	if rep := leaks.Diff(r.baseline, after); !rep.Empty() {
		return 0, 0, nil, fmt.Errorf("orchd fell left leaks:\n%s", rep)
	}
	return up, down, mem, nil
}

// ctrRound is the floor: what a script driving containerd's own client does.
func (r *runner) ctrRound(ctx context.Context, n int, probe string) (up, down time.Duration, peakDaemonKB int64, err error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("c%d-%02d", r.next(), i)
	}
	t0 := time.Now()
	for _, id := range ids {
		if err := r.ctr(ctx, "run", "-d", "--net-host", r.opts.Image.Ref, id, "/probe", probe); err != nil {
			return 0, 0, 0, err
		}
	}
	if err := r.waitRunning(ctx, ctrNS, n); err != nil {
		return 0, 0, 0, err
	}
	up = time.Since(t0)
	peakDaemonKB = rssKB(r.opts.DaemonPid)
	t0 = time.Now()
	for _, id := range ids {
		if err := r.ctr(ctx, "task", "kill", id); err != nil {
			return 0, 0, 0, err
		}
	}
	// The same grace orchd gives (TIMEOUT_STOP 2s), then SIGKILL what is left.
	if err := r.waitStopped(ctx, ids, 2*time.Second); err != nil {
		for _, id := range ids {
			_ = r.ctr(ctx, "task", "kill", "-s", "SIGKILL", id)
		}
		if err := r.waitStopped(ctx, ids, 10*time.Second); err != nil {
			return 0, 0, 0, err
		}
	}
	for _, id := range ids {
		if err := r.ctr(ctx, "task", "rm", id); err != nil {
			return 0, 0, 0, err
		}
		if err := r.ctr(ctx, "containers", "rm", id); err != nil {
			return 0, 0, 0, err
		}
	}
	return up, time.Since(t0), peakDaemonKB, nil
}

func (r *runner) leakTarget(stateDir string) leaks.Target {
	return leaks.Target{Address: r.opts.Address, Namespace: orchdNS, Root: r.opts.Root, State: r.opts.State, OrchdStateDir: stateDir}
}

func (r *runner) next() int { r.round++; return r.round }

func (r *runner) ctr(ctx context.Context, args ...string) error {
	full := append([]string{"--address", r.opts.Address, "--namespace", ctrNS}, args...)
	out, err := exec.CommandContext(ctx, r.opts.Ctr, full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// waitRunning polls containerd until ns has n RUNNING tasks.
func (r *runner) waitRunning(ctx context.Context, ns string, n int) error {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(ctx, ns), 3*time.Minute)
	defer cancel()
	for {
		running := 0
		cs, err := r.client.Containers(ctx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			t, err := c.Task(ctx, nil)
			if err != nil {
				continue
			}
			if st, err := t.Status(ctx); err == nil && st.Status == containerd.Running {
				running++
			}
		}
		if running >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d running tasks in %s: %d running: %w", n, ns, running, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitStopped polls until every task in ids has stopped, or timeout passes.
func (r *runner) waitStopped(ctx context.Context, ids []string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(ctx, ctrNS), timeout)
	defer cancel()
	for {
		left := 0
		for _, id := range ids {
			c, err := r.client.LoadContainer(ctx, id)
			if err != nil {
				continue
			}
			t, err := c.Task(ctx, nil)
			if err != nil {
				continue
			}
			if st, err := t.Status(ctx); err == nil && st.Status != containerd.Stopped {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d tasks still running: %w", left, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// grove is one orchd project + state dir in the orchd namespace.
type grove struct {
	r       *runner
	project string
	state   string
}

func (r *runner) newGrove(name string) *grove {
	base := filepath.Join(r.opts.WorkDir, name)
	return &grove{r: r, project: filepath.Join(base, "p"), state: filepath.Join(base, "s")}
}

func (g *grove) write(orchfile string) error {
	if err := os.MkdirAll(g.project, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(g.project, "Orchfile"), []byte(orchfile), 0o600)
}

func (g *grove) orchd(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"--namespace", orchdNS, "--state-dir", g.state, "--project-dir", g.project,
		"--runtime", "containerd", "--platform", "orchdi", "-q"}, args...)
	cmd := exec.CommandContext(ctx, g.r.opts.Orchd, full...)
	cmd.Env = append(os.Environ(), "ORCHD_CONTAINERD_SOCKET="+g.r.opts.Address)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("orchd %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (g *grove) fell(ctx context.Context) error {
	_, err := g.orchd(ctx, "fell")
	return err
}

type surveyRow struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Restarts int    `json:"restarts"`
}

func (g *grove) survey(ctx context.Context) ([]surveyRow, error) {
	out, err := g.orchd(ctx, "survey", "--json")
	if err != nil {
		return nil, err
	}
	var rows []surveyRow
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("survey --json: %w", err)
	}
	return rows, nil
}

// memSample sums the resident memory of orchd's processes for one grove.
type memSample struct {
	// steadyKB sums PSS (shared pages of the orchd binary divided among the
	// processes mapping them); peakKB sums VmHWM, which counts them in full.
	steadyKB, peakKB int64
	daemonKB         int64
	procs            int
}

// sampleProcs finds every process whose command line names stateDir (the
// supervisors read <state>/run/<label>.unit.json, the leaves <state>/run/<label>.crun.json).
func sampleProcs(stateDir string, daemonPid int) *memSample {
	m := &memSample{daemonKB: rssKB(daemonPid)}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), stateDir) {
			continue
		}
		_, hwm := statusKB(pid)
		m.steadyKB += pssKB(pid)
		m.peakKB += hwm
		m.procs++
	}
	return m
}

// pssKB reads a process's proportional set size from smaps_rollup.
func pssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

func rssKB(pid int) int64 {
	rss, _ := statusKB(pid)
	return rss
}

func statusKB(pid int) (rss, hwm int64) {
	if pid <= 0 {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			hwm = v
		}
	}
	return rss, hwm
}

func metric(name string, orchd, baseline float64, unit, against string) Metric {
	m := Metric{Name: name, Orchd: orchd, Baseline: baseline, Unit: unit, Against: against}
	if baseline != 0 {
		m.Ratio = orchd / baseline
	}
	return m
}

func median(v []float64) float64 { return percentile(v, 50) }

// percentile uses the nearest-rank method.
func percentile(v []float64, p int) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	idx := (p*len(s)+99)/100 - 1
	return s[max(0, min(idx, len(s)-1))]
}
