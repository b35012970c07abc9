// Package soak samples what a long run must not grow, once per cycle, and
// judges the samples by the slope of a least-squares line: containerd's RSS,
// file descriptors, threads and goroutines, and the host's mounts, cgroups and
// processes. A leak of one object per cycle is a slope of 1; noise around a
// flat level fits a slope near 0, however large the noise.
package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Metrics, in the order they are reported.
const (
	RSS        = "containerd_rss_kib"
	FDs        = "containerd_fds"
	Threads    = "containerd_threads"
	Goroutines = "containerd_goroutines"
	Mounts     = "host_mounts"
	Cgroups    = "host_cgroups"
	Processes  = "host_processes"
)

// Names lists every metric.
var names = [...]string{RSS, FDs, Threads, Goroutines, Mounts, Cgroups, Processes}

// Names returns the metrics in report order.
func Names() []string { return names[:] }

// Bounds are the largest slopes (growth per cycle) a run may fit. A leak of
// one fd, thread, goroutine, mount, cgroup or process per cycle fits 1; the
// bounds leave room for the noise of a shared host. RSS is in KiB: 64 KiB a
// cycle is 9.4 MiB over 150 cycles.
var defaultBounds = map[string]float64{
	RSS: 64, FDs: 0.1, Threads: 0.1, Goroutines: 0.5, Mounts: 0.1, Cgroups: 0.1, Processes: 0.2,
}

// DefaultBounds returns a copy of the stated bounds.
func DefaultBounds() map[string]float64 {
	b := make(map[string]float64, len(defaultBounds))
	for k, v := range defaultBounds {
		b[k] = v
	}
	return b
}

// Window is how many of the last cycles the line is fitted over.
const Window = 150

// ShortBound is the least bound a run shorter than a full window is judged
// against (see Judge).
const ShortBound = 0.4

// Sample is one cycle's measurements; -1 marks one that could not be taken
// (goroutines need containerd's debug socket).
type Sample struct {
	Cycle  int              `json:"cycle"`
	At     time.Time        `json:"at"`
	Values map[string]int64 `json:"values"`
}

// Sampler measures a containerd process and the host.
type Sampler struct {
	// Pid returns containerd's pid (it may change if the daemon restarts).
	Pid func() int
	// DebugSocket is containerd's debug address (pprof); empty: no goroutines.
	DebugSocket string
	// CgroupRoot is /sys/fs/cgroup unless set (tests).
	CgroupRoot string
}

// Sample takes one sample.
func (s Sampler) Sample(ctx context.Context, cycle int) (Sample, error) {
	out := Sample{Cycle: cycle, At: time.Now().UTC(), Values: map[string]int64{}}
	pid := s.Pid()
	if pid <= 0 {
		return out, fmt.Errorf("sample: containerd is not running")
	}
	proc := fmt.Sprintf("/proc/%d", pid)
	st, err := os.ReadFile(proc + "/status")
	if err != nil {
		return out, fmt.Errorf("sample containerd %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			out.Values[RSS] = firstInt(v)
		}
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			out.Values[Threads] = firstInt(v)
		}
	}
	fds, err := os.ReadDir(proc + "/fd")
	if err != nil {
		return out, fmt.Errorf("sample containerd %d fds: %w", pid, err)
	}
	out.Values[FDs] = int64(len(fds))
	out.Values[Goroutines] = -1
	if s.DebugSocket != "" {
		n, err := DaemonGoroutines(ctx, s.DebugSocket)
		if err != nil {
			return out, err
		}
		out.Values[Goroutines] = n
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return out, fmt.Errorf("sample mounts: %w", err)
	}
	out.Values[Mounts] = int64(strings.Count(string(mi), "\n"))
	root := s.CgroupRoot
	if root == "" {
		root = "/sys/fs/cgroup"
	}
	out.Values[Cgroups] = countCgroups(root)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out, fmt.Errorf("sample processes: %w", err)
	}
	var n int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err == nil {
			n++
		}
	}
	out.Values[Processes] = n
	return out, nil
}

func firstInt(s string) int64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return n
}

// countCgroups counts cgroup directories in every hierarchy under root (v1:
// one per controller; v2: one tree).
func countCgroups(root string) int64 {
	var n int64
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a cgroup removed during the walk
		}
		if d.IsDir() && p != root {
			if d.Type()&fs.ModeSymlink == 0 {
				n++
			}
		}
		return nil
	})
	return n
}

// DaemonGoroutines reads the total from containerd's pprof goroutine profile at
// its debug socket.
func DaemonGoroutines(ctx context.Context, sock string) (int64, error) {
	hc := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://containerd/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("pprof on %s: %w", sock, err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("pprof on %s: %w", sock, err)
	}
	// "goroutine profile: total 42"
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, fmt.Errorf("pprof on %s: empty profile", sock)
	}
	n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("pprof on %s: header %q", sock, line)
	}
	return n, nil
}

// Slope is the least-squares slope of ys against 0, 1, 2, ...
func Slope(ys []float64) float64 {
	n := float64(len(ys))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i, y := range ys {
		x := float64(i)
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	return (n*sxy - sx*sy) / (n*sxx - sx*sx)
}

// Fit is one metric's verdict.
type Fit struct {
	Metric string  `json:"metric"`
	First  int64   `json:"first"`
	Last   int64   `json:"last"`
	Min    int64   `json:"min"`
	Max    int64   `json:"max"`
	Slope  float64 `json:"slope_per_cycle"`
	Bound  float64 `json:"bound"`
	// Judged is false for a noisy metric over a short run: shown, not held
	// against the bound (see Judge).
	Judged bool `json:"judged"`
	OK     bool `json:"ok"`
}

// Report is the verdict of a run: the cycles the line was fitted over and one
// Fit per metric that was measured.
type Report struct {
	Cycles   int   `json:"cycles"`
	FromN    int   `json:"fit_from_cycle"`
	ToN      int   `json:"fit_to_cycle"`
	Fits     []Fit `json:"fits"`
	Complete bool  `json:"full_window"`
}

// OK says no metric grew beyond its bound.
func (r Report) OK() bool {
	for _, f := range r.Fits {
		if !f.OK {
			return false
		}
	}
	return len(r.Fits) > 0
}

// Judge fits each metric over the last Window samples. A run shorter than
// Window+Window/3 cycles is fitted over the samples after its first quarter
// (warm-up: caches, the first image import), and says so (Complete false);
// over such a short window the host-wide counts (mounts, cgroups, processes),
// which move with whatever else runs on the host, and containerd's RSS, whose
// Go heap swings by megabytes between collections, are shown but not judged:
// a short run judges the counts that must return exactly (fds, threads,
// goroutines), against at least ShortBound: over 15 samples one step of +1
// halfway (a thread the Go runtime adds in a busy moment, a connection still
// closing) fits a slope of 0.1 (two such steps 0.2), while a leak of one object
// every other cycle still fits 0.5 and one per cycle 1.
func Judge(samples []Sample, bounds map[string]float64) Report {
	r := Report{Cycles: len(samples)}
	if len(samples) < 2 {
		return r
	}
	from := len(samples) - Window
	r.Complete = from >= Window/3
	if !r.Complete {
		from = len(samples) / 4
	}
	win := samples[from:]
	r.FromN, r.ToN = win[0].Cycle, win[len(win)-1].Cycle
	for _, m := range names {
		ys := make([]float64, 0, len(win))
		f := Fit{Metric: m, Bound: bounds[m], Min: math.MaxInt64, Max: math.MinInt64}
		measured := true
		for _, s := range win {
			v, ok := s.Values[m]
			if !ok || v < 0 {
				measured = false
				break
			}
			ys = append(ys, float64(v))
			f.Min, f.Max = min(f.Min, v), max(f.Max, v)
		}
		if !measured {
			continue
		}
		f.First, f.Last = win[0].Values[m], win[len(win)-1].Values[m]
		f.Slope = Slope(ys)
		f.Judged = r.Complete || !noisy(m)
		if !r.Complete {
			f.Bound = max(f.Bound, ShortBound)
		}
		f.OK = !f.Judged || f.Slope <= f.Bound
		r.Fits = append(r.Fits, f)
	}
	return r
}

// noisy metrics are judged only over a full window (see Judge).
func noisy(metric string) bool {
	return metric == Mounts || metric == Cgroups || metric == Processes || metric == RSS
}

// WriteTable prints the fits.
func (r Report) WriteTable(w io.Writer) {
	window := "full window"
	if !r.Complete {
		window = fmt.Sprintf("short run: fitted after the first quarter, not over the last %d", Window)
	}
	fmt.Fprintf(w, "slopes over cycles %d..%d of %d (%s)\n", r.FromN, r.ToN, r.Cycles, window)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tFIRST\tLAST\tMIN\tMAX\tSLOPE/CYCLE\tBOUND\tOK")
	for _, f := range r.Fits {
		ok := fmt.Sprint(f.OK)
		if !f.Judged {
			ok = "not judged (short run)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%+.4f\t%g\t%s\n", f.Metric, f.First, f.Last, f.Min, f.Max, f.Slope, f.Bound, ok)
	}
	tw.Flush()
}
