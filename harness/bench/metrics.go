package bench

import (
	"context"
	"fmt"
	"time"
)

// Targets for this kind of machine (2 cores, containerd 2.2.1).
const (
	FanoutRatioTarget   = 1.25 // fan-out to RUNNING against the in-process floor
	TeardownRatioTarget = 1.25 // fell against the floor's concurrent teardown
	SingleRatioTarget   = 1.1  // single start p50 against one `ctr run -d`
	PeakRSSTargetMB     = 20.0 // per service: supervisor + 1/N of the containerd agent (and a leaf where one runs), VmHWM
	SteadyPSSTargetMB   = 8.0  // per service, PSS
	// RestartOverheadTarget is allowed on top of RESTART_DELAY per crash-restart.
	RestartOverheadTarget = 300 * time.Millisecond
)

// series collects one contender's rounds.
type series struct {
	up, down, daemonMB, peakMB, pssMB []float64
}

func (s *series) add(rd round, n int) {
	s.up = append(s.up, rd.up.Seconds())
	s.down = append(s.down, rd.down.Seconds())
	s.daemonMB = append(s.daemonMB, float64(rd.daemonKB)/1024)
	if rd.mem != nil && n > 0 {
		s.peakMB = append(s.peakMB, float64(rd.mem.peakKB)/1024/float64(n))
		s.pssMB = append(s.pssMB, float64(rd.mem.pssKB)/1024/float64(n))
	}
}

// rounds runs every contender once per round, rotating the order.
func (r *runner) rounds(ctx context.Context, n, rounds int, cs []contender, label string) (map[string]*series, error) {
	out := map[string]*series{}
	for _, c := range cs {
		out[c.name] = &series{}
	}
	for i := 0; i < rounds; i++ {
		var line []string
		for _, c := range rotate(cs, i) {
			rd, err := c.run(ctx, n)
			if err != nil {
				return nil, fmt.Errorf("%s, N=%d, round %d: %s: %w", label, n, i+1, c.name, err)
			}
			out[c.name].add(rd, n)
			line = append(line, fmt.Sprintf("%s up %.2fs down %.2fs", short(c.name), rd.up.Seconds(), rd.down.Seconds()))
		}
		r.logf("%s N=%d round %d/%d: %v", label, n, i+1, rounds, line)
	}
	return out, nil
}

func short(name string) string {
	switch name {
	case FloorName:
		return "floor"
	case CtrParName:
		return "ctr-par"
	case CtrSeqName:
		return "ctr-seq"
	}
	return name
}

// fanout measures N services to RUNNING and their teardown, and memory.
func (r *runner) fanout(ctx context.Context) ([]Metric, error) {
	n, k := r.opts.Services, r.opts.Rounds
	s, err := r.rounds(ctx, n, k, []contender{r.orchdC(), r.floorC(), r.ctrParC(), r.ctrSeqC()}, "fan-out")
	if err != nil {
		return nil, err
	}
	o, f, p, q := s["orchd"], s[FloorName], s[CtrParName], s[CtrSeqName]
	up := measured(fmt.Sprintf("fan-out: %d services to RUNNING", n), "s", stat(o.up), stat(f.up), FloorName, k,
		side(CtrParName, stat(p.up)), side(CtrSeqName, stat(q.up)))
	up.RatioTarget = FanoutRatioTarget
	down := measured(fmt.Sprintf("teardown: %d services (orchd fell)", n), "s", stat(o.down), stat(f.down), FloorName, k,
		side(CtrParName+" teardown", stat(p.down)), side(CtrSeqName+" teardown", stat(q.down)))
	down.RatioTarget = TeardownRatioTarget
	return []Metric{
		up, down,
		target("memory per service: peak RSS (supervisor + agent / N, VmHWM)", "MB", stat(o.peakMB), PeakRSSTargetMB, "target 20 MB", k),
		target("memory per service: PSS with all running (supervisor + agent / N)", "MB", stat(o.pssMB), SteadyPSSTargetMB, "target 8 MB", k),
		measured(fmt.Sprintf("containerd RSS with %d tasks running", n), "MB", stat(o.daemonMB), stat(f.daemonMB), FloorName, k,
			side(CtrParName, stat(p.daemonMB)), side(CtrSeqName, stat(q.daemonMB))),
	}, nil
}

// single measures one service from command to RUNNING.
func (r *runner) single(ctx context.Context) ([]Metric, error) {
	k := r.opts.SingleRounds
	s, err := r.rounds(ctx, 1, k, []contender{r.orchdC(), r.ctrSeqC(), r.floorC()}, "single start")
	if err != nil {
		return nil, err
	}
	o, c, f := s["orchd"], s[CtrSeqName], s[FloorName]
	p := func(v []float64, q int) Stat {
		return Stat{Median: percentile(v, q), Min: stat(v).Min, Max: stat(v).Max, Values: v}
	}
	p50 := measured("single start to RUNNING, p50", "s", p(o.up, 50), p(c.up, 50), "one `ctr run -d`", k, side(FloorName, p(f.up, 50)))
	p50.RatioTarget = SingleRatioTarget
	p95 := measured("single start to RUNNING, p95", "s", p(o.up, 95), p(c.up, 95), "one `ctr run -d`", k, side(FloorName, p(f.up, 95)))
	return []Metric{p50, p95}, nil
}

// cadence measures, for a container that exits 3 under RESTART on-failure,
// the interval from each task exit to the next task start (containerd's own
// event timestamps) against RESTART_DELAY + the allowed overhead.
func (r *runner) cadence(ctx context.Context) ([]Metric, error) {
	const delay = time.Second
	want := r.opts.Restarts
	g := r.newGrove(fmt.Sprintf("cadence%d", r.next()))
	orchfile := fmt.Sprintf("SERVICE crash\nFROM %s\nCMD exit 3\nRESTART on-failure\nRESTART_DELAY %ds\nSTART_LIMIT_BURST 100\nSTART_LIMIT_INTERVAL 10m\nTIMEOUT_STOP 2s\n",
		r.opts.Image.Ref, int(delay.Seconds()))
	if err := g.write(orchfile); err != nil {
		return nil, err
	}
	w, err := r.watchNS(ctx, r.ns.orchd)
	if err != nil {
		return nil, err
	}
	defer w.close()
	defer g.fell(context.WithoutCancel(ctx))
	mark, exitMark := w.count(), len(w.exitTimes())
	if _, err := g.orchd(ctx, "grow"); err != nil {
		return nil, err
	}
	// want+1 starts give want exit-to-start intervals.
	if err := w.waitStarts(ctx, mark, want+1, time.Duration(want+1)*(delay+30*time.Second)); err != nil {
		return nil, fmt.Errorf("crash-restart: %w", err)
	}
	starts, exits := w.startTimes(mark), w.exitTimes()[exitMark:]
	if err := g.fell(ctx); err != nil {
		return nil, err
	}
	var iv []float64
	for i := 1; i < len(starts) && i-1 < len(exits); i++ {
		iv = append(iv, starts[i].Sub(exits[i-1]).Seconds())
	}
	if len(iv) == 0 {
		return nil, fmt.Errorf("crash-restart: %d starts and %d exits seen, no interval", len(starts), len(exits))
	}
	st := stat(iv)
	r.logf("crash-restart: exit to next start median %.3fs (min %.3f max %.3f) for RESTART_DELAY %s", st.Median, st.Min, st.Max, delay)
	goal := (delay + RestartOverheadTarget).Seconds()
	return []Metric{target("crash-restart: task exit to next start (RESTART_DELAY 1s)", "s", st, goal, "target RESTART_DELAY + 0.3 s", len(iv))}, nil
}
