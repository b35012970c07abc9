package spec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// src builds a Source from lines.
func src(name string, lines ...string) Source {
	return Source{Name: name, Data: []byte(strings.Join(lines, "\n") + "\n")}
}

// noEnv is a LookupEnv that sees no ORCH_ARG_* variables, so the host
// environment cannot change a test's outcome.
func noEnv(string) (string, bool) { return "", false }

func mustParse(t *testing.T, opts Options, sources ...Source) *Spec {
	t.Helper()
	if opts.LookupEnv == nil {
		opts.LookupEnv = noEnv
	}
	s, err := Parse(sources, opts)
	if err != nil {
		t.Fatalf("parse: unexpected error:\n%v", err)
	}
	return s
}

// wantErr is one expected error: at is the exact "FILE:LINE" (or "FILE" for
// line 0), msg and hint are substrings ("" = not checked; hint "-" = no hint).
type wantErr struct {
	at, msg, hint string
}

func (w wantErr) String() string { return fmt.Sprintf("%s: %s (hint %q)", w.at, w.msg, w.hint) }

func errorsOf(t *testing.T, err error) ErrorList {
	t.Helper()
	if err == nil {
		t.Fatalf("parse succeeded, want errors")
	}
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want *ErrorList: %v", err, err)
	}
	if len(*list) == 0 {
		t.Fatalf("empty ErrorList returned as error")
	}
	return *list
}

func checkErrors(t *testing.T, err error, want ...wantErr) {
	t.Helper()
	got := errorsOf(t, err)
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v\nwant:\n%v", len(got), len(want), err, want)
	}
	for i, w := range want {
		e := got[i]
		line := e.Error()
		if !strings.HasPrefix(line, w.at+": ") {
			t.Errorf("error %d = %q, want prefix %q", i, line, w.at+": ")
		}
		if w.msg != "" && !strings.Contains(e.Msg, w.msg) {
			t.Errorf("error %d message = %q, want it to contain %q", i, e.Msg, w.msg)
		}
		switch {
		case w.hint == "-" && e.Hint != "":
			t.Errorf("error %d hint = %q, want none", i, e.Hint)
		case w.hint != "" && w.hint != "-" && !strings.Contains(e.Hint, w.hint):
			t.Errorf("error %d hint = %q, want it to contain %q", i, e.Hint, w.hint)
		}
	}
}
