package systemd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAvailable(t *testing.T) {
	ok := func(context.Context, string) error { return nil }
	silent := func(context.Context, string) error {
		return errors.New("dial unix /run/user/0/bus: connect: no such file or directory")
	}
	for _, tt := range []struct {
		name  string
		host  Host
		scope string
		want  []string // substrings of the one-line error; nil = available
	}{
		{"systemd answering", Host{PID1: "systemd", Answers: ok}, "user", nil},
		{"not PID 1", Host{PID1: "process_api", Answers: ok}, "user", []string{`PID 1 here is "process_api"`, "--platform orchdi"}},
		{"no PID 1 name", Host{Answers: ok}, "system", []string{`"unknown"`, "--platform orchdi"}},
		{"user bus silent", Host{PID1: "systemd", Answers: silent}, "user", []string{"user manager does not answer", "no such file", "pass --system, or --platform orchdi"}},
		{"system bus silent", Host{PID1: "systemd", Answers: silent}, "system", []string{"system manager does not answer", "pass --user, or --platform orchdi"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Available(context.Background(), tt.host, tt.scope)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want available, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

// A chosen platform waits longer than the detection probe for a slow bus,
// and a manager that cannot be reached is still one line naming the way out.
func TestOpenWaitsPastTheProbe(t *testing.T) {
	slow := func(ctx context.Context, _ string) (manager, error) {
		select {
		case <-time.After(probeTimeout + 500*time.Millisecond):
			return newRecordingManager(), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	host := Host{PID1: "systemd", Answers: func(context.Context, string) error { return errors.New("must not be probed") }}
	p := New("system", WithHost(host), withManager(slow))
	m, err := p.open(context.Background())
	if err != nil {
		t.Fatalf("a bus slower than the probe: %v", err)
	}
	m.Close()
	p = New("system", WithHost(host), withManager(func(context.Context, string) (manager, error) {
		return nil, errors.New("dial unix /run/systemd/private: connect: no such file or directory")
	}))
	_, err = p.open(context.Background())
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "system manager does not answer") ||
		!strings.Contains(err.Error(), "pass --user, or --platform orchdi") {
		t.Errorf("unreachable manager: %v", err)
	}
}
