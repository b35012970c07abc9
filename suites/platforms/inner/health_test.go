//go:build inception

package inner

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/suites/framework"
)

// gateState is what a spec sees while a dependency's start job is held by
// its HEALTHCHECK: the dependent's ActiveState and the dependency's survey row.
type gateState struct {
	dependent string
	row       framework.Row
}

// whileGated waits (in the background, beside grow) until dep's unit is
// held in held (its SubState) with survey HEALTH starting and, for a
// container, its task running; then records the state, runs release and
// sends what it saw on the returned channel.
func whileGated(ctx context.Context, s *framework.Spec, dep, held, dependent string, container bool, release func()) <-chan gateState {
	seen := make(chan gateState, 1)
	go func() {
		defer GinkgoRecover()
		var row framework.Row
		Eventually(ctx, func(g Gomega) {
			g.Expect(show(ctx, unit(s, dep), "SubState")["SubState"]).To(Equal(held))
			rows, err := s.CLI.Survey(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			r, ok := framework.FindRow(rows, dep)
			g.Expect(ok).To(BeTrue())
			g.Expect(r.Health).To(Equal("starting"))
			if container {
				g.Expect(strings.ToLower(r.TaskStatus)).To(Equal("running"), "db's task")
			}
			row = r
		}).WithTimeout(framework.Scaled(4*time.Minute)).Should(Succeed(), "%s's start job never waited for its HEALTHCHECK", dep)
		st := gateState{dependent: show(ctx, unit(s, dependent), "ActiveState")["ActiveState"], row: row}
		release()
		seen <- st
	}()
	return seen
}

var _ = Describe("HEALTHCHECK on systemd", Label("platforms", "vm", "health"), Serial, func() {
	It("holds a REQUIRES dependent until the dependency's HTTP HEALTHCHECK answers 2xx", func(ctx SpecContext) {
		s := systemdSpec("bare")
		www := filepath.Join(s.Dir, "www")
		Expect(os.MkdirAll(www, 0o755)).To(Succeed())
		port := freePort()
		url := fmt.Sprintf("http://127.0.0.1:%d/health", port)
		s.WriteOrchfile(fmt.Sprintf("SERVICE api\nRUN exec busybox httpd -f -p 127.0.0.1:%d -h %s\nHEALTHCHECK %s\nREADINESS_TIMEOUT 240s\n\n"+
			"SERVICE web\nRUN exec sleep 1000\nREQUIRES api\n", port, www, url))
		seen := whileGated(ctx, s, "api", "start-post", "web", false, func() {
			// The server answers, but 404: the gate is the 2xx, not a socket.
			resp, err := http.Get(url)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusNotFound))
			Expect(os.WriteFile(filepath.Join(www, "health"), []byte("ok\n"), 0o644)).To(Succeed())
		})
		grow(ctx, s)
		var st gateState
		Eventually(ctx, seen).Should(Receive(&st))
		Expect(st.dependent).To(Equal("inactive"), "web's state while api answered 404")
		s.EventuallyRow(ctx, "web", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		api := s.EventuallyRow(ctx, "api", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		Expect(api.Health).To(Equal("healthy"))
		s.Fell(ctx)
		expectNoUnits(ctx, s)
	}, framework.SpecDeadline(8*time.Minute))

	It("gates a container's readiness on its in-container HEALTHCHECK through notify-relay and reports later verdicts", Label("containerd"), func(ctx SpecContext) {
		s := systemdSpec("containerd")
		flag := filepath.Join(s.Dir, "flag")
		Expect(os.MkdirAll(flag, 0o755)).To(Succeed())
		s.WriteOrchfile(fmt.Sprintf("SERVICE db\nFROM %s\nCMD sleep forever\nVOLUME %s:/flag\nHEALTHCHECK /probe exists /flag/ready\nREADINESS_TIMEOUT 300s\nTIMEOUT_STOP 2s\n\n"+
			"SERVICE web\nRUN exec sleep 1000\nREQUIRES db\n", s.Image("probe"), flag))
		ready := filepath.Join(flag, "ready")
		// Type=notify: the start job is held in "start" until notify-relay
		// passes READY=1 on.
		seen := whileGated(ctx, s, "db", "start", "web", true, func() {
			Expect(os.WriteFile(ready, nil, 0o644)).To(Succeed())
		})
		grow(ctx, s)
		var st gateState
		Eventually(ctx, seen).Should(Receive(&st))
		Expect(st.dependent).To(Equal("inactive"), "web's state while db was not yet healthy")
		Expect(st.row.ContainerID).NotTo(BeEmpty(), "db's container while its start job was held")
		Expect(st.row.State).To(Equal("starting"))
		s.EventuallyRow(ctx, "web", func(g Gomega, r framework.Row) { g.Expect(r.State).To(Equal("running")) })
		s.EventuallyRow(ctx, "db", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(Equal("running"))
			g.Expect(r.Health).To(Equal("healthy"))
		})
		// Polled: under TCG one slow check can report unhealthy in between.
		Eventually(ctx, func(g Gomega) {
			g.Expect(show(ctx, unit(s, "db"), "StatusText")["StatusText"]).To(Equal("health: healthy"))
		}).Should(Succeed())
		// Later verdicts reach survey through the unit's STATUS=.
		Expect(os.Remove(ready)).To(Succeed())
		s.EventuallyRow(ctx, "db", func(g Gomega, r framework.Row) {
			g.Expect(r.State).To(Equal("running"))
			g.Expect(r.Health).To(Equal("unhealthy"))
			g.Expect(r.Healthy).To(BeFalse())
		})
		s.Fell(ctx)
		expectNoUnits(ctx, s)
		s.ExpectNoLeaks(ctx)
	}, framework.SpecDeadline(10*time.Minute))
})

// freePort is a TCP port nothing listens on right now.
func freePort() int {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
