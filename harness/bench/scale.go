package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// ScalePoint is fan-out and teardown at one N, for orchd and the in-process floor.
type ScalePoint struct {
	N         int     `json:"n"`
	OrchdUp   Stat    `json:"orchd_fanout_s"`
	FloorUp   Stat    `json:"floor_fanout_s"`
	UpRatio   float64 `json:"fanout_ratio"` // orchd / floor, lower is better
	OrchdDown Stat    `json:"orchd_teardown_s"`
	FloorDown Stat    `json:"floor_teardown_s"`
	DownRatio float64 `json:"teardown_ratio"` // orchd / floor, lower is better
	// OrchdPSS is the PSS of all of orchd's processes with N running (MB).
	OrchdPSS Stat `json:"orchd_pss_mb"`
	// DaemonOrchd and DaemonFloor are containerd's RSS with N running (MB).
	DaemonOrchd Stat `json:"containerd_rss_orchd_mb"`
	DaemonFloor Stat `json:"containerd_rss_floor_mb"`
}

// ScaleResult is the curve.
type ScaleResult struct {
	Rounds  int          `json:"rounds"`
	Env     Env          `json:"env"`
	Points  []ScalePoint `json:"points"`
	Plot    string       `json:"plot"`
	Seconds float64      `json:"seconds"`
}

// Scale measures orchd and the in-process floor at each N (alternating, in a
// rotating order) and writes the curve to reportDir/scale.svg.
func Scale(ctx context.Context, opts Options, ns []int, reportDir string) (*ScaleResult, error) {
	opts.defaults()
	if len(ns) == 0 {
		return nil, fmt.Errorf("scale: no N given")
	}
	start := time.Now()
	env := probeEnv(ctx, opts)
	r, err := newRunner(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer r.client.Close()
	env.Containerd = r.daemonVersion(ctx)
	res := &ScaleResult{Rounds: opts.Rounds}
	for _, n := range ns {
		if n <= 0 {
			return nil, fmt.Errorf("scale: N must be positive, got %d", n)
		}
		s, err := r.rounds(ctx, n, opts.Rounds, []contender{r.orchdC(), r.floorC()}, "scale")
		if err != nil {
			return res, err
		}
		o, f := s["orchd"], s[FloorName]
		total := make([]float64, len(o.pssMB))
		for i, v := range o.pssMB {
			total[i] = v * float64(n)
		}
		p := ScalePoint{N: n, OrchdUp: stat(o.up), FloorUp: stat(f.up), OrchdDown: stat(o.down), FloorDown: stat(f.down),
			OrchdPSS: stat(total), DaemonOrchd: stat(o.daemonMB), DaemonFloor: stat(f.daemonMB)}
		p.UpRatio, p.DownRatio = ratio(p.OrchdUp.Median, p.FloorUp.Median), ratio(p.OrchdDown.Median, p.FloorDown.Median)
		res.Points = append(res.Points, p)
	}
	env.finish()
	res.Env, res.Seconds = env, time.Since(start).Seconds()
	if err := os.MkdirAll(reportDir, 0o755); err != nil {
		return res, err
	}
	res.Plot = filepath.Join(reportDir, "scale.svg")
	f, err := os.Create(res.Plot)
	if err != nil {
		return res, err
	}
	WriteSVG(f, res)
	if err := f.Close(); err != nil {
		return res, fmt.Errorf("write %s: %w", res.Plot, err)
	}
	return res, CheckScale(res)
}

// CheckScale reports points whose figures are missing or not finite.
func CheckScale(r *ScaleResult) error {
	for _, p := range r.Points {
		for name, v := range map[string]float64{"orchd fan-out": p.OrchdUp.Median, "floor fan-out": p.FloorUp.Median,
			"orchd teardown": p.OrchdDown.Median, "floor teardown": p.FloorDown.Median, "fan-out ratio": p.UpRatio,
			"teardown ratio": p.DownRatio, "orchd PSS": p.OrchdPSS.Median, "containerd RSS": p.DaemonOrchd.Median} {
			if !finite(v) || v <= 0 {
				return fmt.Errorf("scale N=%d: %s is %v", p.N, name, v)
			}
		}
	}
	return nil
}

// ScaleMarkdown prints the curve as a table.
func ScaleMarkdown(w io.Writer, r *ScaleResult, command, plot string) {
	fmt.Fprintf(w, "`%s`: %d rounds per N, %.0f s wall.\n\n", command, r.Rounds, r.Seconds)
	EnvMarkdown(w, r.Env)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "![fan-out and teardown against N](%s)\n\n", plot)
	fmt.Fprintln(w, "Medians over every round, [min-max]; ratio = orchd / in-process floor, lower is better.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| N | orchd fan-out | floor fan-out | ratio | orchd fell | floor teardown | ratio | orchd PSS, all processes | containerd RSS (orchd / floor rounds) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, p := range r.Points {
		fmt.Fprintf(w, "| %d | %s s %s | %s s %s | %.2fx | %s s %s | %s s %s | %.2fx | %s MB | %s / %s MB |\n", p.N,
			num(p.OrchdUp.Median), spread(p.OrchdUp.Min, p.OrchdUp.Max), num(p.FloorUp.Median), spread(p.FloorUp.Min, p.FloorUp.Max), p.UpRatio,
			num(p.OrchdDown.Median), spread(p.OrchdDown.Min, p.OrchdDown.Max), num(p.FloorDown.Median), spread(p.FloorDown.Min, p.FloorDown.Max), p.DownRatio,
			num(p.OrchdPSS.Median), num(p.DaemonOrchd.Median), num(p.DaemonFloor.Median))
	}
}
