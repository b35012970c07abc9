// Package healthcheck is what the leaves that run a command HEALTHCHECK where
// the service lives (inside its container, inside its VM) share: how the
// command is executed, the cadence, and the loop that reports each change of
// verdict to the supervisor.
package healthcheck

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/shlex"
)

// Cadence, as the supervisor's own checks: fast until the first pass
// (dependents wait for it), then relaxed; each run bounded by Timeout.
const (
	Fast    = 250 * time.Millisecond
	Slow    = 2 * time.Second
	Timeout = 5 * time.Second
)

// Verdicts, as the supervisor's X_ORCHD_HEALTH notice carries them.
const (
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
)

// IsCommand reports whether hc is a command check (run where the service
// lives) rather than an http(s) URL (fetched from the host).
func IsCommand(hc string) bool {
	hc = strings.TrimSpace(hc)
	return hc != "" && !strings.HasPrefix(hc, "http://") && !strings.HasPrefix(hc, "https://")
}

// Argv is how a command HEALTHCHECK executes: through /bin/sh -c when it uses
// shell syntax, else its words exec'd directly, so an image without a shell
// can still be checked.
func Argv(hc string) ([]string, error) {
	if strings.ContainsAny(hc, "|&;<>()$`*?[]~{}\n") {
		return []string{"/bin/sh", "-c", hc}, nil
	}
	words, err := shlex.Split(hc)
	if err != nil {
		return nil, fmt.Errorf("HEALTHCHECK %q: %w", hc, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("HEALTHCHECK is empty")
	}
	if strings.Contains(words[0], "=") {
		// VAR=value cmd: an assignment only a shell understands.
		return []string{"/bin/sh", "-c", hc}, nil
	}
	return words, nil
}

// Loop runs check (seq counts the runs from 1) until ctx ends, Fast until the
// first pass and Slow after, and calls report with each change of verdict
// (the first verdict included) and the failure, if any.
func Loop(ctx context.Context, check func(ctx context.Context, seq int64) error, report func(verdict string, err error)) {
	t := time.NewTimer(0)
	defer t.Stop()
	var (
		seq    int64
		last   string
		passed bool
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seq++
		err := check(ctx, seq)
		if ctx.Err() != nil {
			return
		}
		verdict := Healthy
		if err != nil {
			verdict = Unhealthy
		}
		if verdict != last {
			last = verdict
			report(verdict, err)
		}
		passed = passed || err == nil
		if passed {
			t.Reset(Slow)
		} else {
			t.Reset(Fast)
		}
	}
}
