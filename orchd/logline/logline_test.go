package logline

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRecordsRoundTrip(t *testing.T) {
	var file bytes.Buffer
	now := time.Date(2026, 12, 1, 14, 0, 0, 5, time.FixedZone("x", 3600))
	out := NewWriter(&file, Stdout, WithClock(func() time.Time { return now }))
	errw := NewWriter(&file, Stderr, WithClock(func() time.Time { return now.Add(time.Second) }))
	for _, w := range []struct {
		w *Writer
		s string
	}{{out, "one\ntw"}, {errw, "err line\n"}, {out, "o\n"}, {out, "tail"}} {
		if n, err := w.w.Write([]byte(w.s)); n != len(w.s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w.s, n, err)
		}
	}
	want := "2026-12-01T13:00:00.000000005Z stdout F one\n" +
		"2026-12-01T13:00:00.000000005Z stdout P tw\n" +
		"2026-12-01T13:00:01.000000005Z stderr F err line\n" +
		"2026-12-01T13:00:00.000000005Z stdout F o\n" +
		"2026-12-01T13:00:00.000000005Z stdout P tail\n"
	if file.String() != want {
		t.Fatalf("records:\n%s\nwant:\n%s", file.String(), want)
	}
	var a Assembler
	var got []string
	for _, phys := range strings.Split(strings.TrimSuffix(file.String(), "\n"), "\n") {
		if l, ok := a.Add([]byte(phys)); ok {
			got = append(got, l.Stream+":"+string(l.Text))
		}
	}
	for _, l := range a.Flush() {
		got = append(got, l.Stream+":"+string(l.Text)+"(partial)")
	}
	if strings.Join(got, "|") != "stdout:one|stderr:err line|stdout:two|stdout:tail(partial)" {
		t.Fatalf("lines: %q", got)
	}
}

func TestParseRefusesNonRecords(t *testing.T) {
	for _, line := range []string{"", "plain output", "2026-12-01T13:00:00Z stdin F x", "2026-12-01T13:00:00Z stdout X x", "yesterday stdout F x"} {
		if _, ok := Parse([]byte(line)); ok {
			t.Errorf("Parse(%q): a record", line)
		}
	}
	r, ok := Parse([]byte("2026-12-01T13:00:00Z stderr F "))
	if !ok || r.Stream != Stderr || r.Partial || len(r.Text) != 0 {
		t.Errorf("an empty line: %+v %v", r, ok)
	}
}

func TestRelayWritesEveryChunkAtOnce(t *testing.T) {
	var file bytes.Buffer
	src := strings.NewReader(strings.Repeat("x", 40<<10) + "\nend")
	if err := Relay(NewWriter(&file, Stdout), src); err != nil {
		t.Fatal(err)
	}
	var a Assembler
	var lines []Line
	for _, phys := range strings.Split(strings.TrimSuffix(file.String(), "\n"), "\n") {
		if l, ok := a.Add([]byte(phys)); ok {
			lines = append(lines, l)
		}
	}
	lines = append(lines, a.Flush()...)
	if len(lines) != 2 || len(lines[0].Text) != 40<<10 || string(lines[1].Text) != "end" || !lines[1].Partial {
		t.Fatalf("a 40 KiB line (longer than one read) and a partial one: got %d lines", len(lines))
	}
}

func TestStreamsStampOnlyTheNamedOnes(t *testing.T) {
	for _, c := range []struct {
		out, err bool
		value    string
	}{{true, true, "stdout,stderr"}, {true, false, "stdout"}, {false, true, "stderr"}, {false, false, ""}} {
		if got := RecordsValue(c.out, c.err); got != c.value {
			t.Fatalf("RecordsValue(%v, %v) = %q, want %q", c.out, c.err, got, c.value)
		}
		var o, e bytes.Buffer
		ow, ew := Streams(c.value, &o, &e)
		ow.Write([]byte("to out\n"))
		ew.Write([]byte("to err\n"))
		for _, s := range []struct {
			buf     *bytes.Buffer
			stamped bool
			stream  string
		}{{&o, c.out, Stdout}, {&e, c.err, Stderr}} {
			r, ok := Parse(bytes.TrimSuffix(s.buf.Bytes(), []byte("\n")))
			if ok != s.stamped {
				t.Fatalf("%q: %s written %q: record %v, want %v", c.value, s.stream, s.buf.String(), ok, s.stamped)
			}
			if ok && r.Stream != s.stream {
				t.Fatalf("%q: %s written as stream %q", c.value, s.stream, r.Stream)
			}
		}
	}
}
