package suiterun

import (
	"sync"
	"testing"
	"time"
)

func TestScheduleBoundsJobsAndRunsLeakAlone(t *testing.T) {
	names := []string{"fanout", "leak", "oneshot", "crashrestart", "specalign"}
	var mu sync.Mutex
	running, peak := map[string]bool{}, 0
	var order []string
	// The first two suites each hold their slot until both have started.
	var pair sync.WaitGroup
	pair.Add(2)
	both := make(chan struct{})
	go func() { pair.Wait(); close(both) }()
	Schedule(names, 2, func(i int) {
		n := names[i]
		mu.Lock()
		if n == "leak" && len(running) > 0 {
			t.Errorf("leak started beside %v", running)
		}
		for other := range running {
			if other == "leak" {
				t.Errorf("%s started beside leak", n)
			}
		}
		running[n] = true
		peak = max(peak, len(running))
		mu.Unlock()
		if n == "fanout" || n == "oneshot" {
			pair.Done()
			select {
			case <-both:
			case <-time.After(10 * time.Second):
				t.Errorf("%s: fanout and oneshot never ran at once", n)
			}
		}
		mu.Lock()
		delete(running, n)
		order = append(order, n)
		mu.Unlock()
	})
	if peak != 2 {
		t.Errorf("peak %d suites at once, want 2", peak)
	}
	if len(order) != len(names) || order[len(order)-1] != "leak" {
		t.Errorf("order %v: want every suite, leak last", order)
	}
}
