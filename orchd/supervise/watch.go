package supervise

import (
	"context"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/contract"
)

// watch follows one started service until it exits (stopped and timedOut
// false), ctx ends (it is stopped: stopped true) or it is not ready within
// TIMEOUT_START (it is stopped: timedOut true).
//
// Ready means: the start command sent READY=1 (with Exec.Notify; else it was
// exec'd) and, when the service has a HEALTHCHECK, a check passed. Only then
// is the service `healthy` for dependents and its ready marker written. A
// oneshot is bounded by TIMEOUT_START until it exits.
func (s *supervisor) watch(ctx context.Context, p *proc, pc procCtx) (stopped, timedOut bool) {
	u := s.unit
	leafPid := p.servicePid()
	hc := strings.TrimSpace(u.Healthcheck)
	hasCheck := hc != "" && !u.Oneshot
	// A command check of a service whose start command runs it where the
	// service lives arrives as X_ORCHD_HEALTH notices; the rest run here.
	checksHere := hasCheck && !(u.Exec.Notify && u.Exec.NotifyHealth && !isHTTPCheck(hc))
	health := ""
	if hasCheck {
		health = contract.HealthStarting
	}
	s.update(func(st *contract.Status) {
		st.State, st.Message, st.Healthy, st.Health = contract.StateStarting, "", false, health
		st.Pid, st.LeafPid = leafPid, leafPid
	})
	s.log.Info("started", "pid", leafPid, "init", p.pid)

	hctx, hcancel := context.WithCancel(ctx)
	verdicts := make(chan verdict)
	hdone := make(chan struct{})
	close(hdone)
	defer func() {
		hcancel()
		<-hdone
	}()

	var (
		ready    bool // READY=1 seen (or no notify protocol)
		healthy  bool // last verdict
		judged   bool // a verdict arrived
		complete bool // ready and, with a check, healthy once
		mainPid  = leafPid
	)
	timer := time.NewTimer(s.timeoutStart())
	defer timer.Stop()
	deadline := timer.C

	// The handlers below only change the status; each event's changes are
	// written once, by flush, after it is handled.
	onReady := func() {
		ready = true
		s.mutate(func(st *contract.Status) { st.State, st.Pid = contract.StateRunning, mainPid })
		s.log.Info("running", "pid", mainPid)
		if checksHere {
			hdone = make(chan struct{})
			go func() { defer close(hdone); s.health(hctx, pc, p.pid, verdicts) }()
		}
	}
	// settle records readiness for dependents once ready and healthy.
	settle := func() {
		if !ready || complete || (hasCheck && !healthy) {
			return
		}
		complete = true
		if !u.Oneshot {
			deadline = nil // TIMEOUT_START bounds a oneshot until it exits
			s.mutate(func(st *contract.Status) { st.Healthy = true })
			// Dependents trust the marker: the status saying healthy goes first.
			s.flush()
			s.writeReady()
		}
	}
	onVerdict := func(v verdict) {
		if v.ok != healthy || !judged {
			if v.ok {
				s.log.Info("healthy")
			} else {
				s.log.Warn("unhealthy", "detail", v.detail)
			}
		}
		healthy, judged = v.ok, true
		s.mutate(func(st *contract.Status) {
			st.Health = contract.HealthUnhealthy
			if v.ok {
				st.Health = contract.HealthHealthy
			}
			if complete {
				st.Healthy = v.ok
			}
		})
		settle()
	}

	if !u.Exec.Notify {
		onReady()
		settle()
		s.flush()
	}
	var notices <-chan notice
	if p.notices != nil {
		notices = p.notices
	} else if s.notify != nil {
		notices = s.notify.C
	}
	for {
		select {
		case <-p.done:
			return false, false
		case <-ctx.Done():
			s.stop(p, pc)
			return true, false
		case <-deadline:
			s.log.Warn("TIMEOUT_START reached; stopping", "timeout", s.timeoutStart(), "ready", ready, "healthy", healthy)
			s.stop(p, pc)
			return false, true
		case v := <-verdicts:
			onVerdict(v)
			s.flush()
		case n, ok := <-notices:
			if !ok {
				notices = nil
				continue
			}
			// Like systemd's NotifyAccess=main: only the start command (or
			// the main pid it named) speaks for the service. Notices of an
			// earlier start are dropped here too.
			if n.pid != leafPid && n.pid != mainPid {
				s.log.Debug("notice from another process dropped", "pid", n.pid, "fields", n.fields)
				continue
			}
			if pid := n.mainPid(); pid > 0 {
				mainPid = pid
				s.mutate(func(st *contract.Status) { st.Pid = pid })
			}
			if msg, ok := n.fields["STATUS"]; ok {
				s.mutate(func(st *contract.Status) { st.Message = msg })
			}
			if n.fields["STOPPING"] == "1" {
				s.log.Info("service reports it is stopping")
				s.mutate(func(st *contract.Status) { st.Message = "stopping" })
			}
			if n.ready() && !ready {
				onReady()
			}
			if h, ok := n.fields[HealthKey]; ok && hasCheck && !checksHere && ready {
				onVerdict(verdict{ok: h == contract.HealthHealthy, detail: n.fields["STATUS"]})
			}
			settle()
			s.flush()
		}
	}
}
