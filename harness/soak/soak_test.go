package soak

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

func TestSlope(t *testing.T) {
	for _, c := range []struct {
		ys   []float64
		want float64
	}{
		{[]float64{5, 5, 5, 5}, 0},
		{[]float64{0, 1, 2, 3, 4}, 1},
		{[]float64{10, 8, 6}, -2},
		{[]float64{3}, 0},
	} {
		if got := Slope(c.ys); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Slope(%v) = %v, want %v", c.ys, got, c.want)
		}
	}
}

// series builds samples whose metric m follows f(cycle).
func series(n int, f func(i int) int64) []Sample {
	var out []Sample
	for i := 1; i <= n; i++ {
		v := map[string]int64{}
		for _, m := range Names() {
			v[m] = 100
		}
		v[FDs] = f(i)
		out = append(out, Sample{Cycle: i, Values: v})
	}
	return out
}

func TestJudge(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	noisy := series(200, func(int) int64 { return 200 + r.Int64N(40) }) // a flat level, noisy
	if rep := Judge(noisy, DefaultBounds()); !rep.OK() || !rep.Complete || rep.FromN != 51 || rep.ToN != 200 {
		t.Errorf("flat noisy fds: %+v", rep)
	}
	leak := series(200, func(i int) int64 { return 200 + int64(i)/5 }) // one fd every 5 cycles
	rep := Judge(leak, DefaultBounds())
	if rep.OK() {
		t.Errorf("a leak of 0.2 fd per cycle passed: %+v", rep)
	}
	var b strings.Builder
	rep.WriteTable(&b)
	if !strings.Contains(b.String(), "containerd_fds") || !strings.Contains(b.String(), "false") {
		t.Errorf("table:\n%s", b.String())
	}
	short := Judge(series(40, func(int) int64 { return 7 }), DefaultBounds())
	if short.Complete || short.FromN != 11 || !short.OK() {
		t.Errorf("short run: %+v", short)
	}
	// A short run forgives one step of +1 (a thread high-water mark), not a leak.
	step := series(20, func(i int) int64 { return 12 + int64(i/10) })
	if rep := Judge(step, DefaultBounds()); !rep.OK() {
		t.Errorf("short run, one step: %+v", rep)
	}
	half := series(20, func(i int) int64 { return 12 + int64(i/2) })
	if rep := Judge(half, DefaultBounds()); rep.OK() {
		t.Errorf("short run, a leak every other cycle passed: %+v", rep)
	}
	// A short run judges containerd's own counts, not the host-wide ones.
	grow := series(40, func(i int) int64 { return int64(i) })
	for i := range grow {
		grow[i].Values[Processes] = int64(100 + i)
		grow[i].Values[RSS] = int64(60000 + 200*i)
	}
	rep = Judge(grow, DefaultBounds())
	for _, f := range rep.Fits {
		switch f.Metric {
		case FDs:
			if !f.Judged || f.OK {
				t.Errorf("short run, fds growing: %+v", f)
			}
		case Processes, RSS:
			if f.Judged || !f.OK {
				t.Errorf("short run, %s: %+v", f.Metric, f)
			}
		}
	}
	// A metric not measured (goroutines without a debug socket) is left out, not passed.
	s := series(10, func(int) int64 { return 1 })
	for i := range s {
		s[i].Values[Goroutines] = -1
	}
	for _, f := range Judge(s, DefaultBounds()).Fits {
		if f.Metric == Goroutines {
			t.Errorf("unmeasured goroutines judged: %+v", f)
		}
	}
}

func TestSampleThisProcess(t *testing.T) {
	s, err := Sampler{Pid: os.Getpid}.Sample(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{RSS, FDs, Threads, Mounts, Processes} {
		if s.Values[m] <= 0 {
			t.Errorf("%s = %d", m, s.Values[m])
		}
	}
	if s.Values[Goroutines] != -1 {
		t.Errorf("goroutines without a debug socket = %d, want -1", s.Values[Goroutines])
	}
	if _, err := (Sampler{Pid: func() int { return 0 }}).Sample(context.Background(), 1); err == nil {
		t.Error("no containerd: no error")
	}
}
