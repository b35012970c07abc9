package faults

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/harness/registry"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/suites/framework"
)

// fellBound is how long fell may take with TIMEOUT_STOP 2s services: the
// stop grace plus containerd round trips, never a pull or a restart delay.
const fellBound = 30 * time.Second

// bigLayerSize makes the mid-start spec's import last long enough to be seen.
const bigLayerSize = 128 << 20

// timedFell fells and expects it to return within fellBound.
func timedFell(ctx SpecContext, s *framework.Spec) {
	GinkgoHelper()
	start := time.Now()
	s.Fell(ctx)
	Expect(time.Since(start)).To(BeNumerically("<", fellBound), "fell must be bounded by the stop timeouts")
	Expect(orchdProcs(s)).To(BeEmpty(), "fell returned while orchd processes remain")
}

// stallingProxy fronts a registry and holds every blob request until
// released (or the client goes away), so a pull is caught in the middle.
type stallingProxy struct {
	srv     *httptest.Server
	stalled chan string // receives the path of each held request
	release chan struct{}
	once    sync.Once
}

func newStallingProxy(upstream string) *stallingProxy {
	u, err := url.Parse("http://" + upstream)
	Expect(err).NotTo(HaveOccurred())
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &stallingProxy{stalled: make(chan string, 64), release: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") {
			select {
			case p.stalled <- r.URL.Path:
			default:
			}
			select {
			case <-p.release:
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	return p
}

func (p *stallingProxy) Host() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func (p *stallingProxy) Close() {
	p.once.Do(func() { close(p.release) })
	p.srv.CloseClientConnections()
	p.srv.Close()
}

var _ = Describe("fell at an awkward moment", Label("fell"), func() {
	var s *framework.Spec
	BeforeEach(func() { s = fw.NewSpec() })

	It("mid-restart-delay: returns at once and leaves nothing", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf(`SERVICE crash
FROM %s
CMD exit 3
RESTART always
RESTART_DELAY 5m
TIMEOUT_STOP 2s
`, s.Image("probe")))
		s.Grow(ctx)
		s.EventuallyRow(ctx, "crash", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(Equal(contract.StateRestarting), "crash: %s", r.Message)
		})
		Expect(tasks(ctx, Default, connect(), s.Namespace)).To(BeEmpty(), "no task runs during the restart delay")
		timedFell(ctx, s)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(4*time.Minute))

	It("mid-pull from a registry on loopback: the pull is abandoned and leaves no ingest, lease or image", func(ctx SpecContext) {
		reg, err := registry.Serve(ctx, "127.0.0.1:0", fw.Images["probe"])
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(reg.Close)
		proxy := newStallingProxy(reg.Addr())
		DeferCleanup(proxy.Close)

		ref := proxy.Host() + "/probe:latest"
		s.WriteOrchfile(fmt.Sprintf("SERVICE pulled\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 2s\n", ref))
		s.Grow(ctx)
		By("wait until a blob download is in flight")
		Eventually(ctx, proxy.stalled).WithTimeout(framework.Scaled(2 * time.Minute)).Should(Receive(ContainSubstring("/blobs/")))
		Expect(agents(s)).To(HaveLen(1), "the containerd agent is pulling")
		c := connect()
		Expect(tasks(ctx, Default, c, s.Namespace)).To(BeEmpty(), "no task can exist before the image is pulled")

		timedFell(ctx, s)
		// Released only now: whatever the daemon still fetches must not land in our namespace.
		proxy.Close()
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(5*time.Minute))

	It("mid-start (grow returns, the layout import is still running): nothing leaks", func(ctx SpecContext) {
		// A layer large enough that importing and unpacking it takes a
		// while: fell must begin while the import is provably in flight.
		img := bigLayout(fw.Images["probe"], filepath.Join(s.Dir, "big"), "localhost/orchd-test/probe-big:latest", bigLayerSize)
		var b strings.Builder
		for i := range 3 {
			fmt.Fprintf(&b, "SERVICE s%d\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 2s\n\n", i, img)
		}
		s.WriteOrchfile(b.String())
		s.Grow(ctx)
		By("wait until an import is in flight (a content ingest: a blob being written)")
		var seen framework.Flight
		Eventually(ctx, func(g Gomega) {
			fl, err := s.InFlight(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			if fl.Containers > 0 {
				StopTrying(fmt.Sprintf("a container exists: the import finished before it was seen in flight (%s)", fl)).Now()
			}
			g.Expect(fl.Importing()).To(BeTrue(), "%s", fl)
			seen = fl
		}).WithPolling(10 * time.Millisecond).WithTimeout(framework.Scaled(time.Minute)).Should(Succeed())
		AddReportEntry("in flight when fell began", seen.String())
		timedFell(ctx, s)
		s.ExpectNoLeaks(ctx)
		expectStatusFilesParse(s.StateDir)
	}, framework.SpecDeadline(4*time.Minute))

	It("right after grow, 5 times in a row: every fell is bounded and nothing leaks", func(ctx SpecContext) {
		s.WriteOrchfile(fmt.Sprintf("SERVICE quick\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 2s\n", s.Image("probe")))
		for i := range 5 {
			By(fmt.Sprintf("round %d", i+1))
			s.Grow(ctx)
			if i%2 == 1 {
				s.EventuallyState(ctx, "quick", contract.StateRunning)
			}
			timedFell(ctx, s)
			s.ExpectNoLeaks(ctx)
		}
	}, framework.SpecDeadline(6*time.Minute))
})
