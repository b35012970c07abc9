package framework

import (
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/harness/cycles"
)

func TestTimingAddsUpByStepCostliestFirst(t *testing.T) {
	tm := newTiming()
	tm.observe(cycles.Invocation{Args: []string{"survey", "--json"}, Duration: 300 * time.Millisecond})
	tm.observe(cycles.Invocation{Args: []string{"survey", "--json"}, Duration: 500 * time.Millisecond})
	tm.observe(cycles.Invocation{Args: []string{"grow"}, Duration: 2 * time.Second})
	tm.add("leak inspection", 100*time.Millisecond)
	got := tm.String()
	for _, want := range []string{"orchd grow 1x 2s (max 2s)", "orchd survey 2x 800ms (max 500ms)", "leak inspection 1x 100ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("timing %q lacks %q", got, want)
		}
	}
	if g, s, l := strings.Index(got, "orchd grow"), strings.Index(got, "orchd survey"), strings.Index(got, "leak inspection"); !(g < s && s < l) {
		t.Errorf("timing %q: want the costliest step first", got)
	}
}
