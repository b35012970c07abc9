package platform

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A log of records whose stdout line is split around a stderr line, and a
// last unended line.
const interleaved = "2026-12-01T10:00:00.000000000Z stdout F one\n" +
	"2026-12-01T10:00:01.000000000Z stdout P tw\n" +
	"2026-12-01T10:00:02.000000000Z stderr F err\n" +
	"2026-12-01T10:00:03.000000000Z stdout F o\n" +
	"2026-12-01T10:00:04.000000000Z stdout P tail\n"

func readLogs(t *testing.T, content string, opts LogOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "svc.log")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := ReadLogs(context.Background(), []LogSource{{Path: path, Records: true}}, &out, opts, nil); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestReadLogsJoinsPartialRecords(t *testing.T) {
	for _, c := range []struct {
		name string
		opts LogOptions
		want string
	}{
		{"all", LogOptions{Lines: -1}, "one\nerr\ntwo\ntail\n"},
		{"-n 0", LogOptions{Lines: 0}, ""},
		{"-n 1: the unended line", LogOptions{Lines: 1}, "tail\n"},
		// The tail must not cut "two" after its first record.
		{"-n 2", LogOptions{Lines: 2}, "two\ntail\n"},
		{"-n 3", LogOptions{Lines: 3}, "err\ntwo\ntail\n"},
		{"-t", LogOptions{Lines: 1, Timestamps: true}, "2026-12-01T10:00:04.000000000Z tail\n"},
		// A joined line has the time of its first piece.
		{"--since", LogOptions{Lines: -1, Since: time.Date(2026, 12, 1, 10, 0, 0, 500, time.UTC)}, "err\ntwo\ntail\n"},
		{"--since, -t", LogOptions{Lines: -1, Timestamps: true, Since: time.Date(2026, 12, 1, 10, 0, 2, 0, time.UTC)}, "2026-12-01T10:00:02.000000000Z err\n2026-12-01T10:00:04.000000000Z tail\n"},
	} {
		if got := readLogs(t, interleaved, c.opts); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func TestReadLogsRawLinesAndOldLogs(t *testing.T) {
	// A log written before records: its lines are printed as they are.
	if got := readLogs(t, "plain 1\nplain 2\nno newline", LogOptions{Lines: 2}); got != "plain 2\nno newline\n" {
		t.Errorf("raw lines -n 2: %q", got)
	}
	var out bytes.Buffer
	err := FollowFiles(context.Background(), []string{"/nonexistent/x.log"}, &out, LogOptions{Timestamps: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "-t and --since need per-line times") {
		t.Errorf("FollowFiles -t on a raw file: %v", err)
	}
}

func TestTailOffsetOfALongLog(t *testing.T) {
	var b strings.Builder
	for i := range 5000 {
		b.WriteString(strings.Repeat("x", i%50))
		b.WriteString("\n")
	}
	path := filepath.Join(t.TempDir(), "raw.log")
	os.WriteFile(path, []byte(b.String()), 0o600)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off, err := TailOffset(f, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := b.String()
	lines := strings.SplitAfter(want, "\n")
	tail := strings.Join(lines[len(lines)-4:], "")
	if got := want[off:]; got != tail {
		t.Errorf("tail 3: %q, want %q", got, tail)
	}
}
