package supervise

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/durable"
	"github.com/orchd/orchd/orchd/spec"
)

// Healthcheck cadence: fast until first healthy (dependents are waiting), then
// relaxed. Each check is bounded by checkTimeout.
const (
	probeFast    = 250 * time.Millisecond
	probeSlow    = 2 * time.Second
	checkTimeout = 5 * time.Second
)

// health runs the unit's HEALTHCHECK while the service runs, keeps `healthy` in
// the status and writes the ready marker on the first success. A service with
// no HEALTHCHECK is healthy (and ready) once running.
func (s *supervisor) health(ctx context.Context, pc procCtx, initPid int) {
	if s.unit.Oneshot {
		return // a oneshot is ready when it exits 0, not while it runs
	}
	hc := strings.TrimSpace(s.unit.Healthcheck)
	if hc == "" {
		s.markHealthy(true)
		return
	}
	ready := false
	healthy := false
	// No proxy (a local endpoint must not go through HTTP_PROXY) and no
	// keep-alive (the supervisor should not hold the service's connections).
	client := &http.Client{Timeout: checkTimeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if strings.HasPrefix(hc, "http://") || strings.HasPrefix(hc, "https://") {
			err = httpCheck(ctx, client, hc)
		} else {
			var code int
			code, err = s.runCommand(ctx, []string{"/bin/sh", "-c", hc}, pc, checkTimeout, spawnOpts{join: initPid})
			if err == nil && code != 0 {
				err = fmt.Errorf("exit code %d", code)
			}
		}
		if ctx.Err() != nil {
			return
		}
		ok := err == nil
		if !ok && !ready {
			s.log.Debug("not healthy yet", "err", err)
		}
		if ok != healthy {
			healthy = ok
			if ok {
				s.log.Info("healthy")
			} else {
				s.log.Warn("unhealthy", "err", err)
			}
			s.markHealthy(ok)
		}
		if ok && !ready {
			ready = true
		}
		if ready {
			t.Reset(probeSlow)
		} else {
			t.Reset(probeFast)
		}
	}
}

// markHealthy records health; the first healthy also writes the ready marker.
func (s *supervisor) markHealthy(ok bool) {
	s.update(func(st *contract.Status) {
		if st.State == contract.StateRunning {
			st.Healthy = ok
		}
	})
	if ok {
		ready := s.layout.ReadyFile(s.unit.Label)
		if _, err := os.Stat(ready); err != nil {
			if err := durable.WriteFile(ready, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
				s.log.Error("ready marker", "err", err)
			}
		}
	}
}

func httpCheck(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// depState is what a dependency looks like from here.
type depState int

const (
	depPending    depState = iota // not ready yet, may become ready
	depReady                      // healthy, or oneshot completed
	depFinal                      // will not become ready (failed, exited, stopped, supervisor gone)
	depNotStarted                 // no supervisor and no status: not part of this grow
)

func (s *supervisor) depState(d contract.Dependency) (depState, string) {
	st, alive, err := ReadSettled(s.layout, d.Label)
	if d.Oneshot {
		// The marker is written before the final status: look after reading it.
		if _, rerr := os.Stat(s.layout.ReadyFile(d.Label)); rerr == nil {
			return depReady, "completed"
		}
	}
	if err != nil {
		if alive {
			return depPending, "starting"
		}
		return depNotStarted, "not started"
	}
	desc := st.State
	if st.Message != "" {
		desc += ": " + st.Message
	}
	if !d.Oneshot && st.State == contract.StateRunning && st.Healthy && alive {
		return depReady, desc
	}
	if Final(st.State) {
		return depFinal, desc
	}
	if !alive {
		return depFinal, desc + " (supervisor died)"
	}
	return depPending, desc
}

// waitDeps gates the first start: every REQUIRES must become ready within its
// READINESS_TIMEOUT (else an error naming it); every AFTER is waited for the
// same way, but the service proceeds whatever becomes of it.
func (s *supervisor) waitDeps(ctx context.Context) error {
	type pending struct {
		d        contract.Dependency
		required bool
		deadline time.Time
	}
	now := time.Now()
	var ps []pending
	for _, d := range s.unit.Requires {
		ps = append(ps, pending{d, true, now.Add(d.ReadinessTimeout.Std(spec.DefaultReadinessTimeout.Std(90 * time.Second)))})
	}
	for _, d := range s.unit.After {
		ps = append(ps, pending{d, false, now.Add(d.ReadinessTimeout.Std(spec.DefaultReadinessTimeout.Std(90 * time.Second)))})
	}
	if len(ps) == 0 {
		return nil
	}
	s.setState(contract.StateWaiting, "waiting for dependencies")
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var left []pending
		for _, p := range ps {
			state, desc := s.depState(p.d)
			switch {
			case state == depReady:
				s.log.Info("dependency ready", "dependency", p.d.Service)
			case p.required && state == depFinal:
				return fmt.Errorf("required service %s will not become ready (%s)", p.d.Service, desc)
			case p.required && time.Now().After(p.deadline):
				return fmt.Errorf("required service %s not ready within %s (%s)", p.d.Service, p.d.ReadinessTimeout.Std(90*time.Second), desc)
			case !p.required && (state == depFinal || state == depNotStarted):
				s.log.Info("proceeding after dependency", "dependency", p.d.Service, "state", desc)
			case !p.required && time.Now().After(p.deadline):
				s.log.Warn("dependency not ready in time; proceeding", "dependency", p.d.Service, "state", desc)
			default:
				left = append(left, p)
			}
		}
		ps = left
		if len(ps) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
