package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/logline"
)

// stamped splits `logs -t --no-log-prefix` output into text -> time.
func stamped(t *testing.T, out string) map[string]time.Time {
	t.Helper()
	got := map[string]time.Time{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		ts, text, ok := strings.Cut(line, " ")
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if !ok || err != nil || !strings.HasSuffix(ts, "Z") {
			t.Fatalf("logs -t: line %q does not start with an RFC 3339 UTC time (%v); output:\n%s", line, err, out)
		}
		got[text] = tm
	}
	return got
}

func TestLogsTimestampsSinceStreamsPartialLines(t *testing.T) {
	h := newHome(t)
	proj := h.project("times", `SERVICE tick
RUN sh -c 'echo early; sleep 1.5; echo late-out; echo late-err >&2; printf part1; sleep 0.3; printf part2; echo; printf no-newline'
`)
	before := time.Now()
	h.must(proj, "grow")
	h.waitState(proj, "tick", contract.StateExited, 20*time.Second)
	after := time.Now()

	out := h.must(proj, "logs", "-t", "--no-log-prefix").stdout
	times := stamped(t, out)
	for _, want := range []string{"early", "late-out", "late-err", "part1part2", "no-newline"} {
		tm, ok := times[want]
		if !ok {
			t.Fatalf("logs -t: no line %q (a partial line joined or kept) in\n%s", want, out)
		}
		if tm.Before(before) || tm.After(after) {
			t.Fatalf("logs -t: %q at %s, outside the run %s..%s", want, tm, before, after)
		}
	}
	if gap := times["late-out"].Sub(times["early"]); gap < time.Second {
		t.Fatalf("logs -t: late-out only %s after early; the service slept 1.5s between them:\n%s", gap, out)
	}
	if !strings.HasSuffix(out, " no-newline\n") {
		t.Fatalf("logs -t: the last line (no newline) is not last:\n%s", out)
	}
	// With the prefix, the time follows it.
	if p := h.must(proj, "logs", "-t", "tick").stdout; !strings.HasPrefix(p, "tick | "+times["early"].UTC().Format(logline.TimeLayout)+" early\n") {
		t.Fatalf("logs -t tick: want the prefix, then the time, then the text:\n%s", p)
	}

	// --since: an RFC 3339 time between the two bursts, and durations.
	mid := times["early"].Add(700 * time.Millisecond).Format(time.RFC3339Nano)
	since := h.must(proj, "logs", "--no-log-prefix", "--since", mid).stdout
	if since != "late-out\nlate-err\npart1part2\nno-newline\n" && since != "late-err\nlate-out\npart1part2\nno-newline\n" {
		t.Fatalf("logs --since %s: want the lines after early, got %q", mid, since)
	}
	if got := h.must(proj, "logs", "--since", "0s").stdout; got != "" {
		t.Fatalf("logs --since 0s (now): the service ended before; got %q", got)
	}
	if got := h.must(proj, "logs", "--no-log-prefix", "--since", "1h").stdout; !strings.HasPrefix(got, "early\n") || strings.Count(got, "\n") != 5 {
		t.Fatalf("logs --since 1h: want all five lines, got %q", got)
	}
	for _, bad := range []string{"yesterday", "-5m"} {
		if r := h.run(proj, "logs", "--since", bad); r.code == 0 || !strings.Contains(r.stderr, `--since "`+bad+`"`) {
			t.Fatalf("logs --since %s: want a refusal naming it, got %s", bad, r)
		}
	}
	if got := h.must(proj, "logs", "-n", "2", "--no-log-prefix").stdout; got != "part1part2\nno-newline\n" {
		t.Fatalf("logs -n 2: want the joined partial line and the last one, got %q", got)
	}
	if got := h.must(proj, "logs", "-f", "-t", "-n", "1", "--no-log-prefix").stdout; got != times["no-newline"].UTC().Format(logline.TimeLayout)+" no-newline\n" {
		t.Fatalf("logs -f -t -n 1 on an ended service: got %q", got)
	}

	// On disk the two streams stay apart and a write without a newline is
	// a partial record.
	raw, err := os.ReadFile(filepath.Join(h.dir, ".orch", "logs", "times.tick.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{" stdout F late-out\n", " stderr F late-err\n", " stdout P part1\n", " stdout P no-newline\n"} {
		if !strings.Contains(string(raw), want) {
			t.Fatalf("service log: no record %q in\n%s", want, raw)
		}
	}
}

func TestLogsOwnPathsAndAfterFell(t *testing.T) {
	h := newHome(t)
	proj := h.project("own", `SERVICE own
RUN sh -c 'echo own-out; echo own-err >&2; printf own-tail; exec sleep 1000'
STDOUT out/own.out
ENV TOKEN=s3cret-value
TIMEOUT_STOP 2s
`)
	h.must(proj, "grow")
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(h.must(proj, "logs", "own").stdout, "own-err") {
		if time.Now().After(deadline) {
			t.Fatalf("logs own never showed its stderr: %q", h.must(proj, "logs", "own").stdout)
		}
		time.Sleep(50 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
	// The Orchfile's path holds the bytes exactly as written.
	ownOut := filepath.Join(proj, "out", "own.out")
	if b, err := os.ReadFile(ownOut); err != nil || string(b) != "own-out\nown-tail" {
		t.Fatalf("STDOUT file: want the raw output, got %q (%v)", b, err)
	}
	r := h.run(proj, "logs", "-t", "own")
	if r.code == 0 || !strings.Contains(r.stderr, ownOut) || !strings.Contains(r.stderr, "-t and --since need per-line times") || r.stdout != "" {
		t.Fatalf("logs -t own: want a refusal naming %s and nothing printed, got %s", ownOut, r)
	}
	if r := h.run(proj, "logs", "--since", "1m"); r.code == 0 || !strings.Contains(r.stderr, ownOut) {
		t.Fatalf("logs --since 1m (all services): want a refusal naming %s, got %s", ownOut, r)
	}

	h.must(proj, "fell")
	got := h.must(proj, "logs").stdout
	for _, want := range []string{"own | own-out\n", "own | own-err\n", "own | own-tail\n"} {
		if !strings.Contains(got, want) {
			t.Fatalf("logs after fell: want %q in %q", want, got)
		}
	}
	kept := filepath.Join(h.dir, ".orch", "logs", "own.own.paths.json")
	fi, err := os.Stat(kept)
	if err != nil {
		t.Fatalf("what logs reads after fell: %v", err)
	}
	if b, _ := os.ReadFile(kept); strings.Contains(string(b), "s3cret-value") || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("%s: mode %v, content %q: want paths only, private", kept, fi.Mode(), b)
	}
	// Grown again without STDOUT, the record goes and orchd's log is read.
	h.write(proj, "SERVICE own\nRUN sh -c 'echo plain'\n")
	h.must(proj, "grow")
	h.waitState(proj, "own", contract.StateExited, 15*time.Second)
	if _, err := os.Stat(kept); !os.IsNotExist(err) {
		t.Fatalf("%s kept after the service dropped STDOUT: %v", kept, err)
	}
	if got := h.must(proj, "logs", "-t", "-n", "1", "--no-log-prefix").stdout; !strings.HasSuffix(got, " plain\n") {
		t.Fatalf("logs -t after dropping STDOUT: %q", got)
	}
}

func TestLogsSurviveAKilledSupervisor(t *testing.T) {
	h := newHome(t)
	proj := h.project("killed", `SERVICE trap
RUN trap 'echo stopping-after-term; exit 0' TERM; echo up; while :; do sleep 0.1; done
TIMEOUT_STOP 5s
`)
	h.must(proj, "grow")
	row := h.waitState(proj, "trap", contract.StateRunning, 15*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(h.must(proj, "logs", "trap").stdout, "up") {
		if time.Now().After(deadline) {
			t.Fatal("trap never printed up")
		}
		time.Sleep(50 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
	b, err := os.ReadFile(filepath.Join(h.dir, ".orch", "run", "killed.trap.pid"))
	if err != nil {
		t.Fatal(err)
	}
	sup, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || sup <= 0 {
		t.Fatalf("supervisor pidfile: %q", b)
	}
	if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The service's init stops the service once its supervisor is gone;
	// what the service prints while stopping still reaches the log.
	deadline = time.Now().Add(20 * time.Second)
	for {
		got := h.must(proj, "logs", "--no-log-prefix", "trap").stdout
		if strings.Contains(got, "stopping-after-term\n") && !alive(row.Pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGKILL of the supervisor: service pid %d alive=%v, log %q", row.Pid, alive(row.Pid), got)
		}
		time.Sleep(50 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
}

func TestLogsOfAStopCommandAreRecords(t *testing.T) {
	h := newHome(t)
	proj := h.project("stopcmd", `SERVICE st
RUN echo up; exec sleep 1000
STOP echo from-stop-cmd
TIMEOUT_STOP 1s
`)
	h.must(proj, "grow", "--wait")
	h.must(proj, "fell")
	// STOP joins the service's namespace without an init of its own; its
	// output is stamped all the same.
	times := stamped(t, h.must(proj, "logs", "-t", "--no-log-prefix").stdout)
	if _, ok := times["from-stop-cmd"]; !ok {
		t.Fatalf("logs -t after fell: no STOP output line: %v", times)
	}
}
