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

// verdict is one change of a HEALTHCHECK's result.
type verdict struct {
	ok     bool
	detail string
}

func isHTTPCheck(hc string) bool {
	return strings.HasPrefix(hc, "http://") || strings.HasPrefix(hc, "https://")
}

// health runs the unit's HEALTHCHECK on the host while ctx lives (an HTTP
// check, or a command in the service's PID namespace) and sends each change
// of its result on out, the first result included.
func (s *supervisor) health(ctx context.Context, pc procCtx, initPid int, out chan<- verdict) {
	hc := strings.TrimSpace(s.unit.Healthcheck)
	passed := false
	last := (*bool)(nil)
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
		if isHTTPCheck(hc) {
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
		if last == nil || ok != *last {
			last = &ok
			v := verdict{ok: ok}
			if err != nil {
				v.detail = err.Error()
			}
			select {
			case out <- v:
			case <-ctx.Done():
				return
			}
		}
		passed = passed || ok
		if passed {
			t.Reset(probeSlow)
		} else {
			t.Reset(probeFast)
		}
	}
}

// writeReady writes the ready marker dependents wait for, once.
func (s *supervisor) writeReady() {
	ready := s.layout.ReadyFile(s.unit.Label)
	if _, err := os.Stat(ready); err == nil {
		return
	}
	// Only a running service gets this marker (a completed oneshot's is
	// written durably by the loop): it lives as long as the supervisor, so,
	// like its status, it is replaced atomically but not synced.
	if err := durable.Replace(ready, []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
		s.log.Error("ready marker", "err", err)
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
		ps = append(ps, pending{d, true, now.Add(spec.Readiness(d.ReadinessTimeout))})
	}
	for _, d := range s.unit.After {
		ps = append(ps, pending{d, false, now.Add(spec.Readiness(d.ReadinessTimeout))})
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
				return fmt.Errorf("required service %s not ready within %s (%s)", p.d.Service, spec.Readiness(p.d.ReadinessTimeout), desc)
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
