package faults

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

// statusWatcher re-reads every status file continuously and records any that
// does not parse: a torn (non-atomic) write shows up here.
type statusWatcher struct {
	mu   sync.Mutex
	bad  []string
	stop chan struct{}
	done chan struct{}
}

func watchStatusFiles(stateDir string) *statusWatcher {
	w := &statusWatcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer GinkgoRecover()
		defer close(w.done)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			g := NewGomega(func(msg string, _ ...int) {
				w.mu.Lock()
				w.bad = append(w.bad, msg)
				w.mu.Unlock()
			})
			statusFilesParse(g, stateDir)
		}
	}()
	return w
}

func (w *statusWatcher) Stop() []string {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.bad
}

// faultSeed is ORCHD_FAULTS_SEED when set (to replay a run), else Ginkgo's seed.
func faultSeed() uint64 {
	if v := os.Getenv("ORCHD_FAULTS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		Expect(err).NotTo(HaveOccurred(), "ORCHD_FAULTS_SEED=%q", v)
		return n
	}
	return uint64(GinkgoRandomSeed())
}

var _ = Describe("grow/fell cycles with random SIGKILLs", Label("cycles"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("ORCHD_FAULTS_CYCLES (default 20) cycles end with zero leaks and no torn status file", func(ctx SpecContext) {
		n := framework.EnvInt("ORCHD_FAULTS_CYCLES", 20)
		seed := faultSeed()
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		AddReportEntry("fault seed", fmt.Sprintf("ORCHD_FAULTS_SEED=%d", seed))
		By(fmt.Sprintf("seed %d (replay: ORCHD_FAULTS_SEED=%d)", seed, seed))

		m := marker()
		s.WriteOrchfile(fmt.Sprintf(`SERVICE ctr
FROM %s
CMD sleep forever
RESTART always
RESTART_DELAY 1s
START_LIMIT_BURST 1000
TIMEOUT_STOP 2s

SERVICE host
RUN exec sleep %s
RESTART on-failure
RESTART_DELAY 1s
TIMEOUT_STOP 2s
`, s.Image("probe"), m))
		watcher := watchStatusFiles(s.StateDir)
		defer func() { Expect(watcher.Stop()).To(BeEmpty(), "torn status files were observed") }()

		victims := []struct {
			name string
			find func() []proc
		}{
			{"nothing", func() []proc { return nil }},
			{"the containerd agent", func() []proc { return agents(s) }},
			{"supervisor of ctr", func() []proc { return supervisors(s, "ctr") }},
			{"supervisor of host", func() []proc { return supervisors(s, "host") }},
			{"host process", func() []proc { return withArgv("sleep", m) }},
		}
		for i := range n {
			v := victims[rng.IntN(len(victims))]
			early := rng.IntN(2) == 0
			By(fmt.Sprintf("cycle %d/%d: kill %s (early=%v)", i+1, n, v.name, early))
			s.Grow(ctx)
			if !early {
				s.EventuallyState(ctx, "ctr", contract.StateRunning)
				Eventually(ctx, func() []proc { return withArgv("sleep", m) }).Should(HaveLen(1))
			}
			// Early kills hit whatever exists right after grow returned (maybe nothing yet).
			for _, p := range v.find() {
				sigkill(p)
			}
			timedFell(ctx, s)
			Expect(withArgv("sleep", m)).To(BeEmpty(), "cycle %d: host process survived fell", i+1)
			s.ExpectNoLeaks(ctx)
		}
	}, framework.SpecDeadline(20*time.Minute))
})
