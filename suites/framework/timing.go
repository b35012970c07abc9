package framework

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/orchd/orchd/harness/cycles"
)

// timing adds up where one spec's time goes: every orchd invocation by
// subcommand, and the framework's own steps (leak inspection, clean-up).
// Printed to the spec's log at its end, it is what tells a slow stack (the
// inception VM under TCG) from a slow spec.
type timing struct {
	mu    sync.Mutex
	start time.Time
	steps map[string]*stepTime
}

type stepTime struct {
	n     int
	total time.Duration
	max   time.Duration
}

func newTiming() *timing {
	return &timing{start: time.Now(), steps: map[string]*stepTime{}}
}

// add records one step of duration d under name.
func (t *timing) add(name string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.steps[name]
	if st == nil {
		st = &stepTime{}
		t.steps[name] = st
	}
	st.n++
	st.total += d
	st.max = max(st.max, d)
}

// observe is a cycles.CLI Observe hook: "orchd <subcommand>".
func (t *timing) observe(inv cycles.Invocation) {
	sub := "?"
	if len(inv.Args) > 0 {
		sub = inv.Args[0]
	}
	t.add("orchd "+sub, inv.Duration)
}

// since records the time from start under name.
func (t *timing) since(name string, start time.Time) { t.add(name, time.Since(start)) }

// String is one line: the wall time, then each step (count, total, max),
// the costliest first.
func (t *timing) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.steps))
	for n := range t.steps {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return t.steps[names[i]].total > t.steps[names[j]].total })
	var b strings.Builder
	fmt.Fprintf(&b, "spec time %v:", time.Since(t.start).Round(10*time.Millisecond))
	for _, n := range names {
		st := t.steps[n]
		fmt.Fprintf(&b, " %s %dx %v (max %v);", n, st.n, st.total.Round(10*time.Millisecond), st.max.Round(10*time.Millisecond))
	}
	return strings.TrimSuffix(b.String(), ";")
}
