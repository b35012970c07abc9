package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
)

// orchdBin is the orchd binary built once for these tests, with
// orchd-supervise beside it as installed.
var orchdBin string

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "orchd-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "orchd cli tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := gobuild.ModuleRoot(context.Background())
	if err == nil {
		orchdBin, err = gobuild.Orchd(context.Background(), root, dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orchd cli tests: build orchd and orchd-supervise:", err)
		return 1
	}
	return m.Run()
}

// home is a user's machine: a HOME (so the default state dir ~/.orch is
// shared by every project in it) and the project dirs under it.
type home struct {
	t    *testing.T
	dir  string
	envs []string
}

func newHome(t *testing.T) *home {
	t.Helper()
	h := &home{t: t, dir: t.TempDir()}
	h.envs = []string{"HOME=" + h.dir, "PATH=" + os.Getenv("PATH"), "ORCH_PLATFORM=orchdi", "ORCH_RUNTIME=bare"}
	return h
}

// project writes an Orchfile into <home>/<rel> and fells it at cleanup.
func (h *home) project(rel, orchfile string) string {
	h.t.Helper()
	dir := filepath.Join(h.dir, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Orchfile"), []byte(orchfile), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		if out, err := h.orchd(dir, "fell"); err != nil {
			h.t.Errorf("cleanup fell in %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// result is one orchd run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs orchd in dir; a non-zero exit is not a test failure here.
func (h *home) run(dir string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, orchdBin, args...)
	cmd.Dir, cmd.Env = dir, h.envs
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{stdout: o.String(), stderr: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("orchd %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// orchd runs orchd in dir and returns its combined output and an error for a
// non-zero exit.
func (h *home) orchd(dir string, args ...string) (string, error) {
	r := h.run(dir, args...)
	if r.code != 0 {
		return r.stdout + r.stderr, fmt.Errorf("orchd %s: exit %d", strings.Join(args, " "), r.code)
	}
	return r.stdout + r.stderr, nil
}

// must runs orchd and fails the test on a non-zero exit.
func (h *home) must(dir string, args ...string) result {
	h.t.Helper()
	r := h.run(dir, args...)
	if r.code != 0 {
		h.t.Fatalf("orchd %s in %s: %s", strings.Join(args, " "), dir, r)
	}
	return r
}

// survey is `orchd survey --json` in dir, by service name.
func (h *home) survey(dir string, args ...string) map[string]platform.ServiceStatus {
	h.t.Helper()
	r := h.must(dir, append([]string{"survey", "--json"}, args...)...)
	var rows []platform.ServiceStatus
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		h.t.Fatalf("survey --json: %v\n%s", err, r.stdout)
	}
	out := map[string]platform.ServiceStatus{}
	for _, row := range rows {
		out[row.Name] = row
	}
	return out
}

// waitState polls survey until service is in state, failing at the deadline.
func (h *home) waitState(dir, service, state string, timeout time.Duration) platform.ServiceStatus {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		row, ok := h.survey(dir)[service]
		if ok && row.State == state {
			return row
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s in %s: not %s within %s; last %+v", service, dir, state, timeout, row)
		}
		time.Sleep(50 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

// webOrchfile is a service web that leaves a data file and its project name.
const webOrchfile = `SERVICE web
RUN sh -c 'mkdir -p "$ORCH_DATA_DIR" && echo "$PROJECT" > "$ORCH_DATA_DIR/owner" && exec sleep 1000'
ENV ORCH_DATA_DIR=${ORCH_DATA}
ENV PROJECT=${ORCH_PROJECT}
TIMEOUT_STOP 2s
`

func TestProjectsAreIsolated(t *testing.T) {
	h := newHome(t)
	alpha := h.project("src/Alpha_App", webOrchfile)
	beta := h.project("src/beta", webOrchfile)
	state := filepath.Join(h.dir, ".orch")
	dataOf := func(ns string) string { return filepath.Join(state, "data", ns, "owner") }

	// Grown in one order, felled in the other, then the other way round.
	for _, order := range [][2]string{{alpha, beta}, {beta, alpha}} {
		first, second := order[0], order[1]
		h.must(first, "grow")
		h.must(second, "grow")
		a := h.waitState(alpha, "web", contract.StateRunning, 15*time.Second)
		b := h.waitState(beta, "web", contract.StateRunning, 15*time.Second)
		if a.Label != "alpha-app.web" || b.Label != "beta.web" {
			t.Fatalf("labels %q and %q: want each project in its own namespace (alpha-app, beta)", a.Label, b.Label)
		}
		if a.Pid == b.Pid {
			t.Fatalf("both projects report pid %d", a.Pid)
		}
		for _, dir := range []string{alpha, beta} {
			if rows := h.survey(dir); len(rows) != 1 {
				t.Fatalf("survey in %s sees %d services, want only its own web: %+v", dir, len(rows), rows)
			}
		}
		h.must(first, "fell")
		other := b
		if first == beta {
			other = a
		}
		if !alive(other.Pid) {
			t.Fatalf("fell in %s stopped the other project's web (pid %d)", first, other.Pid)
		}
		if row := h.survey(second)["web"]; row.State != contract.StateRunning {
			t.Fatalf("after fell in %s, %s's web is %q", first, second, row.State)
		}
		for ns, dir := range map[string]string{"alpha-app": alpha, "beta": beta} {
			got, err := os.ReadFile(dataOf(ns))
			if err != nil || strings.TrimSpace(string(got)) != dir {
				t.Fatalf("data of %s after fell in %s: %q %v", ns, first, got, err)
			}
		}
		h.must(second, "fell")
	}
}

func TestSameNamespaceFromAnotherProjectIsRefused(t *testing.T) {
	h := newHome(t)
	one := h.project("work/app", webOrchfile)
	two := h.project("play/app", webOrchfile)
	h.must(one, "grow")
	row := h.waitState(one, "web", contract.StateRunning, 15*time.Second)
	r := h.run(two, "grow")
	if r.code == 0 || !strings.Contains(r.stderr, `namespace "app" is in use by project `+one) {
		t.Fatalf("grow in a second project named app: want a refusal naming %s, got %s", one, r)
	}
	if !alive(row.Pid) {
		t.Fatalf("the refused grow stopped the first project's web")
	}
	// The fix the error names: this project's own namespace, in its .orchrc.
	if err := os.WriteFile(filepath.Join(two, ".orchrc"), []byte("namespace = app-two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.must(two, "grow")
	if got := h.waitState(two, "web", contract.StateRunning, 15*time.Second); got.Label != "app-two.web" || !alive(row.Pid) {
		t.Fatalf("second project: label %q, first web alive %v", got.Label, alive(row.Pid))
	}
}

func TestFellKeepsDataAndVolumesRemovesOnlyNamedVolumes(t *testing.T) {
	h := newHome(t)
	proj := h.project("shop", webOrchfile)
	hostPath := filepath.Join(h.dir, "host-volume")
	if err := os.MkdirAll(hostPath, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(h.dir, ".orch", "data")
	named := contract.NamedVolume(filepath.Join(data, "shop"), "shop", "pgdata")
	otherNS := contract.NamedVolume(filepath.Join(data, "shop"), "other", "pgdata")
	for _, d := range []string{named, otherNS} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	owner := filepath.Join(data, "shop", "owner")

	// fell without flags, also when nothing runs, keeps everything.
	h.must(proj, "fell")
	h.must(proj, "grow")
	h.waitState(proj, "web", contract.StateRunning, 15*time.Second)
	h.must(proj, "fell")
	for _, p := range []string{owner, named, otherNS, hostPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("fell removed %s: %v", p, err)
		}
	}
	if r := h.must(proj, "fell", "--help"); !strings.Contains(r.stdout, "never removes a host-path VOLUME") {
		t.Fatalf("fell --help does not say what --volumes leaves:\n%s", r.stdout)
	}
	if r := h.run(proj, "fell", "web", "--volumes"); r.code == 0 {
		t.Fatalf("fell web --volumes: want a refusal, got %s", r)
	}
	h.must(proj, "fell", "--volumes")
	if _, err := os.Stat(named); !os.IsNotExist(err) {
		t.Fatalf("fell --volumes kept the named volume %s: %v", named, err)
	}
	for _, p := range []string{owner, otherNS, hostPath} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("fell --volumes removed %s: %v", p, err)
		}
	}
}

// write replaces a project's Orchfile.
func (h *home) write(dir, orchfile string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "Orchfile"), []byte(orchfile), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

const twoServices = `SERVICE web
RUN exec sleep 1000
WORKDIR sub
ENV GREETING=hello-from-web
TIMEOUT_STOP 2s
RESTART always
RESTART_DELAY 100ms

SERVICE db
RUN exec sleep 1000
TIMEOUT_STOP 2s
`

func TestPerServiceVerbs(t *testing.T) {
	h := newHome(t)
	proj := h.project("verbs", twoServices)
	if err := os.Mkdir(filepath.Join(proj, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.must(proj, "grow", "--wait")
	web := h.waitState(proj, "web", contract.StateRunning, 5*time.Second)
	db := h.waitState(proj, "db", contract.StateRunning, 5*time.Second)

	// exec: the service's env and workdir, the exit code passed through.
	r := h.run(proj, "exec", "web", "--", "sh", "-c", `echo "$GREETING $PWD"; exit 7`)
	if r.code != 7 || strings.TrimSpace(r.stdout) != "hello-from-web "+filepath.Join(proj, "sub") {
		t.Fatalf("exec web: want exit 7 and \"hello-from-web %s/sub\", got %s", proj, r)
	}
	// exec runs in the service's PID namespace (as root; unprivileged, on the host).
	wantNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", web.Pid))
	if os.Geteuid() != 0 {
		wantNS, err = os.Readlink("/proc/self/ns/pid")
	}
	if err != nil {
		t.Fatal(err)
	}
	if r := h.must(proj, "exec", "web", "--", "readlink", "/proc/self/ns/pid"); strings.TrimSpace(r.stdout) != wantNS {
		t.Fatalf("exec web: PID namespace %q, want the service's %q", strings.TrimSpace(r.stdout), wantNS)
	}

	// kill: the signal reaches the process; RESTART always brings it back.
	h.must(proj, "kill", "-s", "TERM", "web")
	deadline := time.Now().Add(15 * time.Second)
	for {
		row := h.survey(proj)["web"]
		if row.State == contract.StateRunning && row.Pid != web.Pid && row.Restarts >= 1 {
			web = row
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kill -s TERM web: want web restarted with a new pid, last %+v", row)
		}
		time.Sleep(50 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
	if alive(web.Pid) && !alive(db.Pid) {
		t.Fatalf("kill web touched db")
	}

	// restart: a new process, the other service untouched.
	h.must(proj, "restart", "web")
	if row := h.waitState(proj, "web", contract.StateRunning, 15*time.Second); row.Pid == web.Pid || alive(web.Pid) {
		t.Fatalf("restart web: pid %d still running (new row %+v)", web.Pid, row)
	}
	if !alive(db.Pid) {
		t.Fatalf("restart web stopped db")
	}

	// fell SERVICE: only that one goes.
	h.must(proj, "fell", "db")
	if alive(db.Pid) {
		t.Fatalf("fell db: pid %d still running", db.Pid)
	}
	rows := h.survey(proj)
	if _, ok := rows["db"]; ok || rows["web"].State != contract.StateRunning {
		t.Fatalf("after fell db: %+v", rows)
	}
	if r := h.run(proj, "fell", "nosuch"); r.code == 0 || !strings.Contains(r.stderr, `unknown service "nosuch"`) {
		t.Fatalf("fell nosuch: %s", r)
	}
}

func TestGrowWaitAndOrphans(t *testing.T) {
	h := newHome(t)
	proj := h.project("waiting", `SERVICE ok
RUN exec sleep 1000
HEALTHCHECK test -e ok-flag
WORKDIR .
TIMEOUT_STOP 2s

SERVICE broken
RUN sh -c 'echo broken on purpose >&2; exit 3'
HEALTHCHECK test -e never-there
`)
	// broken's check never passes: a RUN service without one is ready the
	// moment it is exec'd, and a poll of --wait may see that before it exits.
	r := h.run(proj, "grow", "--wait")
	if r.code == 0 || !strings.Contains(r.stderr, "broken is not ready: failed") || !strings.Contains(r.stderr, "exit code 3") {
		t.Fatalf("grow --wait with a failing service: want a failure naming broken and its exit code, got %s", r)
	}

	// A service that is not healthy yet holds --wait until it is.
	h.write(proj, `SERVICE ok
RUN exec sleep 1000
HEALTHCHECK test -e ok-flag
WORKDIR .
TIMEOUT_STOP 2s
READINESS_TIMEOUT 2s
`)
	r = h.run(proj, "grow", "--wait")
	if r.code == 0 || !strings.Contains(r.stderr, "ok is not ready after its READINESS_TIMEOUT 2s: running") {
		t.Fatalf("grow --wait with an unhealthy service: want a timeout naming ok, got %s", r)
	}
	if err := os.WriteFile(filepath.Join(proj, "ok-flag"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h.must(proj, "grow", "--wait")
	if row := h.survey(proj)["ok"]; !row.Healthy {
		t.Fatalf("grow --wait returned before ok was healthy: %+v", row)
	}
	// broken's status is left from the first grow: it is not an orphan (not running).
	h.must(proj, "fell")
	h.must(proj, "grow")
	orphan := h.waitState(proj, "ok", contract.StateRunning, 10*time.Second)

	h.write(proj, "SERVICE other\nRUN exec sleep 1000\nTIMEOUT_STOP 2s\n")
	r = h.must(proj, "grow")
	if !strings.Contains(r.stderr, "orphans (running, not in the Orchfile; grow --remove-orphans stops them): ok") {
		t.Fatalf("grow after removing ok from the Orchfile: want ok named as an orphan, got %s", r)
	}
	if !alive(orphan.Pid) {
		t.Fatalf("grow without --remove-orphans stopped ok")
	}
	h.must(proj, "grow", "--remove-orphans")
	if alive(orphan.Pid) {
		t.Fatalf("grow --remove-orphans left ok (pid %d) running", orphan.Pid)
	}
	if _, ok := h.survey(proj)["ok"]; ok {
		t.Fatalf("ok still surveyed after --remove-orphans")
	}
}

func TestSurveyExplains(t *testing.T) {
	h := newHome(t)
	proj := h.project("explain", `SERVICE web
RUN exec sleep 1000
TIMEOUT_STOP 2s

SERVICE sick
RUN exec sleep 1000
HEALTHCHECK false
TIMEOUT_STOP 2s

SERVICE crash
RUN sh -c 'echo crashing on purpose >&2; exit 3'
`)
	h.must(proj, "grow")
	h.waitState(proj, "crash", contract.StateFailed, 15*time.Second)
	web := h.waitState(proj, "web", contract.StateRunning, 15*time.Second)
	h.waitState(proj, "sick", contract.StateRunning, 15*time.Second)

	out := h.must(proj, "survey").stdout
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "SERVICE STATE HEALTH PID RESTARTS UPTIME EXIT REASON" {
		t.Fatalf("survey header: %q", lines[0])
	}
	row := func(name string) []string {
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) > 0 && f[0] == name {
				return f
			}
		}
		t.Fatalf("survey has no row %s:\n%s", name, out)
		return nil
	}
	if f := row("crash"); f[1] != "failed" || f[3] != "-" || f[6] != "3" || !strings.Contains(strings.Join(f[7:], " "), "exited with code 3") {
		t.Fatalf("crash row: want failed, no pid, exit 3 and the reason, got %q\n%s", f, out)
	}
	if f := row("sick"); f[2] != "unhealthy" {
		t.Fatalf("sick row: want HEALTH unhealthy, got %q\n%s", f, out)
	}
	if f := row("web"); f[1] != "running" || f[3] != fmt.Sprint(web.Pid) || len(f) != 7 {
		t.Fatalf("web row: want running, pid %d, no reason, got %q\n%s", web.Pid, f, out)
	}
	if js := h.survey(proj)["crash"]; js.Pid != 0 {
		t.Fatalf("survey --json shows the dead pid %d of crash", js.Pid)
	}

	// survey SERVICE... narrows; an unknown name is an error naming the known ones.
	if rows := h.survey(proj, "web", "crash"); len(rows) != 2 || rows["sick"].Name != "" {
		t.Fatalf("survey web crash: %+v", rows)
	}
	if r := h.run(proj, "survey", "nosuch"); r.code == 0 || !strings.Contains(r.stderr, "known services are crash, sick, web") {
		t.Fatalf("survey nosuch: %s", r)
	}

	// --watch redraws until interrupted (not a terminal here: one table after another).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, orchdBin, "survey", "--watch", "--interval", "100ms", "web")
	cmd.Dir, cmd.Env = proj, h.envs
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen bytes.Buffer
	buf := make([]byte, 4096)
	for strings.Count(seen.String(), "SERVICE") < 3 {
		n, err := pipe.Read(buf)
		if err != nil {
			t.Fatalf("survey --watch: %v after %q", err, seen.String())
		}
		seen.Write(buf[:n])
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("survey --watch ended with %v after an interrupt", err)
	}
	if strings.Contains(seen.String(), "\x1b[") {
		t.Fatalf("survey --watch wrote terminal escapes to a pipe: %q", seen.String())
	}

	// On a terminal (script(1) gives it one) it redraws in place, and logs colours.
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatalf("script(1) is needed for the terminal checks: apt-get install -y bsdutils")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	tty := exec.CommandContext(ctx2, "script", "-qfec", orchdBin+" survey --watch --interval 100ms web", "/dev/null")
	tty.Dir, tty.Env = proj, h.envs
	ttyOut, err := tty.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tty.Start(); err != nil {
		t.Fatal(err)
	}
	seen.Reset()
	for strings.Count(seen.String(), "\x1b[H\x1b[2J") < 2 {
		n, err := ttyOut.Read(buf)
		if err != nil {
			out := seen.String()
			t.Fatalf("survey --watch on a terminal never redrew in place (no clear-screen): %v; last output %q", err, out[max(0, len(out)-300):])
		}
		seen.Write(buf[:n])
	}
	tty.Process.Signal(os.Interrupt)
	tty.Wait()
}

func TestLogsLikeCompose(t *testing.T) {
	h := newHome(t)
	proj := h.project("logs", `SERVICE a
RUN sh -c 'echo a-out; echo a-err >&2; exec sleep 1000'
STDOUT a.out
STDERR a.err
TIMEOUT_STOP 2s

SERVICE bee
RUN sh -c 'echo bee-line1 >&2; echo bee-line2 >&2'
`)
	h.must(proj, "grow")
	h.waitState(proj, "bee", contract.StateExited, 15*time.Second)
	deadline := time.Now().Add(15 * time.Second)
	var all string
	for {
		all = h.must(proj, "logs").stdout
		if strings.Contains(all, "a-err") && strings.Contains(all, "a-out") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs never showed a's stdout and stderr: %q", all)
		}
		time.Sleep(50 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
	for _, want := range []string{"a   | a-out\n", "a   | a-err\n", "bee | bee-line1\n", "bee | bee-line2\n"} {
		if !strings.Contains(all, want) {
			t.Fatalf("logs: want %q in\n%s", want, all)
		}
	}
	if got := h.must(proj, "logs", "bee", "-n", "1").stdout; got != "bee | bee-line2\n" {
		t.Fatalf("logs bee -n 1: %q", got)
	}
	if got := h.must(proj, "logs", "-n", "0").stdout; got != "" {
		t.Fatalf("logs -n 0 printed %q", got)
	}
	if r := h.run(proj, "logs", "-n", "-1"); r.code == 0 || !strings.Contains(r.stderr, "want a number of lines >= 0") {
		t.Fatalf("logs -n -1: want a refusal, got %s", r)
	}
	if r := h.run(proj, "logs", "nosuch"); r.code == 0 || !strings.Contains(r.stderr, "known services are a, bee") {
		t.Fatalf("logs nosuch: %s", r)
	}

	// -f ends by itself once the followed service has ended ...
	if got := h.must(proj, "logs", "-f", "bee").stdout; !strings.Contains(got, "bee | bee-line2") {
		t.Fatalf("logs -f bee: %q", got)
	}
	// ... or been felled.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	follow := exec.CommandContext(ctx, orchdBin, "logs", "-f", "a")
	follow.Dir, follow.Env = proj, h.envs
	var out bytes.Buffer
	follow.Stdout = &out
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	h.must(proj, "fell")
	if err := follow.Wait(); err != nil || ctx.Err() != nil {
		t.Fatalf("logs -f a after fell: %v (ctx %v), output %q", err, ctx.Err(), out.String())
	}

	// The kept log of a felled service is still readable.
	if got := h.must(proj, "logs", "bee").stdout; !strings.Contains(got, "bee | bee-line1") {
		t.Fatalf("logs bee after fell: %q", got)
	}
}

func TestSmallThings(t *testing.T) {
	h := newHome(t)
	proj := h.project("small", `ARG port=8080
SERVICE web
RUN exec sleep 1000
RESTART_DELAY 500ms
TIMEOUT_STOP 1500ms
AFTER ghost

SERVICE worker
RUN exec sleep 1000
TIMEOUT_STOP 2s
`)
	// --version: version, commit, Go and the containerd client.
	v := h.must(proj, "--version").stdout
	for _, want := range []string{"orchd ", "commit: ", "go: go1.", "github.com/containerd/containerd/v2: v2."} {
		if !strings.Contains(v, want) {
			t.Fatalf("orchd --version: want %q in %q", want, v)
		}
	}
	sup := exec.Command(filepath.Join(filepath.Dir(orchdBin), "orchd-supervise"), "--version")
	if out, err := sup.Output(); err != nil || !strings.Contains(string(out), "orchd-supervise ") || !strings.Contains(string(out), "go: go1.") {
		t.Fatalf("orchd-supervise --version: %v %q", err, out)
	}

	// Internal commands work but stay out of help.
	help := h.must(proj, "--help").stdout
	for _, leaf := range []string{"supervise", "containerd-run", "vm-run", "vm-init"} {
		if strings.Contains(help, "\n  "+leaf+" ") {
			t.Fatalf("--help lists the internal command %s:\n%s", leaf, help)
		}
	}
	for _, verb := range []string{"grow", "survey", "fell", "logs", "restart", "kill", "exec", "validate"} {
		if !strings.Contains(help, "\n  "+verb+" ") {
			t.Fatalf("--help does not list %s:\n%s", verb, help)
		}
	}
	if r := h.must(proj, "supervise", "--help"); !strings.Contains(r.stdout, "--spec") {
		t.Fatalf("supervise --help: %s", r)
	}

	// validate: warnings for an undeclared --arg and an AFTER naming no
	// service, exit 0; -q drops them; a clean Orchfile prints nothing.
	r := h.must(proj, "validate", "--arg", "prot=9090")
	for _, want := range []string{"warning: --arg prot: no Orchfile declares ARG prot (declared: port)", "warning: service web: AFTER ghost: no such service"} {
		if !strings.Contains(r.stderr, want) {
			t.Fatalf("validate: want %q, got %s", want, r)
		}
	}
	if r := h.must(proj, "validate", "-q", "--arg", "prot=9090"); r.stdout+r.stderr != "" {
		t.Fatalf("validate -q printed %s", r)
	}
	clean := h.project("clean", "SERVICE a\nRUN true\n")
	if r := h.must(clean, "validate"); r.stdout+r.stderr != "" {
		t.Fatalf("validate of a clean Orchfile printed %s", r)
	}

	// Durations in Go units are accepted end to end (RESTART_DELAY 500ms above).
	if r := h.must(proj, "grow", "-q"); r.stdout+r.stderr != "" {
		t.Fatalf("grow -q printed %s", r)
	}
	h.waitState(proj, "web", contract.StateRunning, 15*time.Second)

	// Completion offers the service names.
	if r := h.must(proj, "__complete", "fell", ""); !strings.Contains(r.stdout, "web\n") || !strings.Contains(r.stdout, "worker\n") {
		t.Fatalf("completion of fell: %s", r)
	}
	if r := h.must(proj, "__complete", "logs", "web", ""); strings.Contains(r.stdout, "web\n") || !strings.Contains(r.stdout, "worker\n") {
		t.Fatalf("completion after web should offer only worker: %s", r)
	}
	if r := h.must(proj, "fell", "-q"); r.stdout+r.stderr != "" {
		t.Fatalf("fell -q printed %s", r)
	}

	// The containerd socket: --address, .orchrc address, CONTAINERD_ADDRESS.
	sock := func(args []string, env ...string) string {
		t.Helper()
		saved := h.envs
		h.envs = append(append([]string{}, saved...), env...)
		defer func() { h.envs = saved }()
		r := h.run(proj, append([]string{"--runtime", "containerd", "grow"}, args...)...)
		if r.code == 0 {
			t.Fatalf("grow against a missing socket succeeded: %s", r)
		}
		return r.stderr
	}
	if got := sock([]string{"--address", "/nonexistent/flag.sock"}, "CONTAINERD_ADDRESS=/nonexistent/env.sock"); !strings.Contains(got, "/nonexistent/flag.sock") {
		t.Fatalf("--address not used: %s", got)
	}
	if got := sock(nil, "CONTAINERD_ADDRESS=/nonexistent/env.sock"); !strings.Contains(got, "/nonexistent/env.sock") {
		t.Fatalf("CONTAINERD_ADDRESS not used: %s", got)
	}
	if err := os.WriteFile(filepath.Join(proj, ".orchrc"), []byte("address = /nonexistent/rc.sock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := sock(nil); !strings.Contains(got, "/nonexistent/rc.sock") {
		t.Fatalf(".orchrc address not used: %s", got)
	}
}

// TestReadmeTourMatchesHelp checks each command of the README's tour against
// `orchd VERB --help`: the verb exists, its usage line matches, every flag it
// shows is a flag of that verb.
func TestReadmeTourMatchesHelp(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "## A tour of orchd")
	end := strings.Index(text, "`grow` is a pipeline")
	if start < 0 || end < start {
		t.Fatal("README has no tour section")
	}
	h := newHome(t)
	verbs := 0
	for _, line := range strings.Split(text[start:end], "\n") {
		cmdline, _, _ := strings.Cut(strings.TrimSpace(line), "#")
		fields := strings.Fields(cmdline)
		if len(fields) < 2 || fields[0] != "orchd" || !strings.HasPrefix(line, "    ") {
			continue
		}
		verbs++
		verb := fields[1]
		help := h.must(h.dir, verb, "--help").stdout
		usage := strings.Join(fields[1:], " ")
		usage = strings.NewReplacer("[--json]", "", "[--watch]", "", "[-f]", "", "[-n N]", "", "[-t]", "", "[--since 10m]", "", "--wait", "", "--remove-orphans", "", "--volumes", "").Replace(usage)
		if words := strings.Fields(usage); len(words) > 1 && !strings.Contains(usage, "Orchfile") && !strings.Contains(help, "orchd "+strings.Join(words, " ")) {
			t.Errorf("README shows %q; orchd %s --help has no usage %q:\n%s", cmdline, verb, "orchd "+strings.Join(words, " "), help)
		}
		for _, f := range fields[2:] {
			f = strings.Trim(f, "[]")
			if strings.HasPrefix(f, "-") && f != "--" && !strings.Contains(help, f+" ") && !strings.Contains(help, f+",") {
				t.Errorf("README shows %s %s; orchd %s --help has no such flag:\n%s", verb, f, verb, help)
			}
		}
	}
	if verbs < 10 {
		t.Fatalf("found %d tour commands in README", verbs)
	}
}
