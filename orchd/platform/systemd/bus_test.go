package systemd

import (
	"context"
	"errors"
	"strings"
	"testing"
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
