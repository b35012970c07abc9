package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestStat(t *testing.T) {
	s := stat([]float64{3, 1, 2, 10})
	if s.Median != 2 || s.Min != 1 || s.Max != 10 || len(s.Values) != 4 {
		t.Fatalf("stat = %+v", s)
	}
	if e := stat(nil); finite(e.Median) {
		t.Fatalf("stat of nothing is %v, want NaN so Check reports it", e.Median)
	}
}

func TestCheckRejectsMissingFigures(t *testing.T) {
	good := measured("x", "s", stat([]float64{2}), stat([]float64{1}), "floor", 1, side("ctr", stat([]float64{4})))
	if err := Check([]Metric{good}); err != nil {
		t.Fatal(err)
	}
	if good.Ratio != 2 || good.Beside[0].Ratio != 0.5 {
		t.Fatalf("ratios %v %v, want orchd/baseline", good.Ratio, good.Beside[0].Ratio)
	}
	for name, m := range map[string]Metric{
		"no rounds":     measured("x", "s", stat(nil), stat([]float64{1}), "floor", 0),
		"zero baseline": measured("x", "s", stat([]float64{1}), stat([]float64{0}), "floor", 1),
		"infinite":      target("x", "s", stat([]float64{math.Inf(1)}), 1, "t", 1),
	} {
		if err := Check([]Metric{m}); err == nil {
			t.Errorf("%s: Check accepted %+v", name, m)
		}
	}
	if Check(nil) == nil {
		t.Error("Check accepted no metrics")
	}
}

func TestRotate(t *testing.T) {
	cs := []contender{{name: "a"}, {name: "b"}, {name: "c"}}
	var got []string
	for i := 0; i < 3; i++ {
		got = append(got, rotate(cs, i)[0].name)
	}
	if strings.Join(got, "") != "abc" {
		t.Fatalf("first contender per round = %v", got)
	}
}

func TestWriteSVG(t *testing.T) {
	r := &ScaleResult{Points: []ScalePoint{
		{N: 1, OrchdUp: stat([]float64{0.3}), FloorUp: stat([]float64{0.2}), OrchdDown: stat([]float64{0.3}), FloorDown: stat([]float64{0.1}), OrchdPSS: stat([]float64{10}), DaemonOrchd: stat([]float64{50}), DaemonFloor: stat([]float64{50})},
		{N: 24, OrchdUp: stat([]float64{5, 4, 6}), FloorUp: stat([]float64{3}), OrchdDown: stat([]float64{3}), FloorDown: stat([]float64{2}), OrchdPSS: stat([]float64{200}), DaemonOrchd: stat([]float64{80}), DaemonFloor: stat([]float64{70})},
	}}
	var b bytes.Buffer
	WriteSVG(&b, r)
	s := b.String()
	if !strings.HasPrefix(s, "<svg") || !strings.HasSuffix(s, "</svg>\n") || strings.Count(s, "<polyline") != 7 {
		t.Fatalf("svg:\n%s", s)
	}
	if strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
		t.Fatalf("svg has non-finite coordinates:\n%s", s)
	}
}
