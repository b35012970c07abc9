package bench

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteTable(t *testing.T) {
	r := &Result{Metrics: []Metric{{
		Name: "fan-out", Unit: "s", Orchd: 1.5, Min: 1, Max: 2, Baseline: 0.5, Ratio: 3, RatioTarget: 2.5, Against: FloorName,
		Beside: []Side{{Against: CtrParName, Median: 3, Ratio: 0.5}},
	}}}
	var b bytes.Buffer
	r.WriteTable(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want header, metric and beside lines, got:\n%s", b.String())
	}
	for i, want := range [][]string{
		{"METRIC", "BASELINE IS"},
		{"fan-out", "1.500", "0.500", "3.00x", "<=2.50", FloorName},
		{"beside: " + CtrParName, "3.000", "0.50x"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d lacks %q: %q", i, w, lines[i])
			}
		}
	}
}
