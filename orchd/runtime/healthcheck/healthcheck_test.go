package healthcheck_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/runtime/healthcheck"
)

func TestArgv(t *testing.T) {
	for hc, want := range map[string][]string{
		"/probe exit 0":         {"/probe", "exit", "0"},
		`pg_isready -U "a b"`:   {"pg_isready", "-U", "a b"},
		"test -f /x || exit 1":  {"/bin/sh", "-c", "test -f /x || exit 1"},
		"PGUSER=app pg_isready": {"/bin/sh", "-c", "PGUSER=app pg_isready"},
		"echo $HOME":            {"/bin/sh", "-c", "echo $HOME"},
	} {
		got, err := healthcheck.Argv(hc)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("Argv(%q) = %q, %v; want %q", hc, got, err, want)
		}
	}
	if _, err := healthcheck.Argv(`"unterminated`); err == nil {
		t.Error("an unterminated quote was accepted")
	}
	if healthcheck.IsCommand("http://x/") || healthcheck.IsCommand(" ") || !healthcheck.IsCommand("true") {
		t.Error("IsCommand misclassifies")
	}
}

// The loop reports the first verdict and each change, never a repeat.
func TestLoopReportsChanges(t *testing.T) {
	results := []error{errors.New("1"), errors.New("2"), nil, nil, errors.New("3")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	healthcheck.Loop(ctx, func(_ context.Context, seq int64) error {
		if int(seq) > len(results) {
			cancel()
			return nil
		}
		return results[seq-1]
	}, func(verdict string, _ error) { got = append(got, verdict) })
	want := []string{"unhealthy", "healthy", "unhealthy"}
	if !slices.Equal(got, want) {
		t.Errorf("reports %q, want %q", got, want)
	}
}
