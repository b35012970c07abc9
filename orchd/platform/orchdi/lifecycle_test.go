package orchdi_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/spec"
)

func restart(policy spec.RestartPolicy, burst int, interval spec.Duration) func(*spec.Service) {
	return func(s *spec.Service) {
		s.Restart = spec.Restart{Policy: policy, Delay: "0s", StartLimitBurst: burst, StartLimitInterval: interval}
	}
}

func TestRestartNo(t *testing.T) {
	w := newWorld(t)
	w.grow(svc("fails", "exit 3"), svc("succeeds", "exit 0"))
	row := w.waitState("fails", contract.StateFailed, 10*time.Second)
	if row.ExitCode == nil || *row.ExitCode != 3 || row.Restarts != 0 {
		t.Errorf("fails: want exit code 3 and no restart, got %+v", row)
	}
	row = w.waitState("succeeds", contract.StateExited, 10*time.Second)
	if row.ExitCode == nil || *row.ExitCode != 0 || row.Restarts != 0 {
		t.Errorf("succeeds: want exit code 0 and no restart, got %+v", row)
	}
}

func TestRestartOnFailure(t *testing.T) {
	w := newWorld(t)
	counter := filepath.Join(w.proj, "count")
	// Fails twice, then succeeds: on-failure restarts twice and stops there.
	run := `n=$(cat ` + counter + ` 2>/dev/null || echo 0); n=$((n+1)); echo $n > ` + counter + `; [ $n -ge 3 ] && exit 0; exit 1`
	w.grow(svc("flaky", run, restart(spec.RestartOnFailure, 5, "60s")))
	row := w.waitState("flaky", contract.StateExited, 20*time.Second)
	if row.Restarts != 2 || row.ExitCode == nil || *row.ExitCode != 0 {
		t.Errorf("want 2 restarts and exit code 0, got %+v", row)
	}
	if got := strings.TrimSpace(readFile(counter)); got != "3" {
		t.Errorf("want 3 runs, got %q", got)
	}
}

func TestRestartAlwaysAndStartLimit(t *testing.T) {
	w := newWorld(t)
	counter := filepath.Join(w.proj, "runs")
	// Exits 0 every time: always restarts it anyway, until the start limit.
	w.grow(svc("looper", `echo run >> `+counter+`; exit 0`, restart(spec.RestartAlways, 3, "60s")))
	row := w.waitState("looper", contract.StateFailed, 20*time.Second)
	if row.Restarts != 3 || !strings.Contains(row.Message, "start limit") {
		t.Errorf("want 3 restarts then a start-limit failure, got %+v", row)
	}
	if n := strings.Count(readFile(counter), "run"); n != 4 {
		t.Errorf("want 4 runs (1 + 3 restarts), got %d", n)
	}
}

func TestRestartDelay(t *testing.T) {
	w := newWorld(t)
	stamps := filepath.Join(w.proj, "stamps")
	w.grow(svc("slow", `date +%s%N >> `+stamps+`; exit 1`, func(s *spec.Service) {
		s.Restart = spec.Restart{Policy: spec.RestartOnFailure, Delay: "1s", StartLimitBurst: 1, StartLimitInterval: "60s"}
	}))
	w.waitState("slow", contract.StateFailed, 20*time.Second)
	lines := strings.Fields(readFile(stamps))
	if len(lines) != 2 {
		t.Fatalf("want 2 runs, got %q", lines)
	}
	var a, b int64
	parseInt(t, lines[0], &a)
	parseInt(t, lines[1], &b)
	if gap := time.Duration(b - a); gap < time.Second {
		t.Errorf("restart came after %s, want >= RESTART_DELAY 1s", gap)
	}
}

func parseInt(t *testing.T, s string, v *int64) {
	t.Helper()
	var err error
	*v, err = parseInt64(s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
}

func TestOneshotReadyMarkerAndDependents(t *testing.T) {
	w := newWorld(t)
	count := filepath.Join(w.proj, "count")
	done := filepath.Join(w.proj, "done")
	// The dependent fails if it starts before the oneshot completed.
	w.grow(
		svc("app", `test -f `+done+` || exit 7; exec sleep 1000`, func(s *spec.Service) { s.Requires = []string{"migrate"} }),
		svc("migrate", `echo ran >> `+count+`; sleep 1; touch `+done, func(s *spec.Service) { s.Oneshot = true; s.Restart.Policy = spec.RestartAlways }),
	)
	w.waitState("migrate", contract.StateExited, 15*time.Second)
	w.waitRunningHealthy("app", 15*time.Second)
	if _, err := os.Stat(w.layout().ReadyFile(w.label("migrate"))); err != nil {
		t.Errorf("oneshot ready marker: %v", err)
	}
	if n := strings.Count(readFile(count), "ran"); n != 1 {
		t.Errorf("oneshot ran %d times, want 1 (never restarted)", n)
	}
}

func TestOneshotFailureFailsRequirer(t *testing.T) {
	w := newWorld(t)
	w.grow(
		svc("bad", `exit 4`, func(s *spec.Service) { s.Oneshot = true }),
		svc("app", `exec sleep 1000`, func(s *spec.Service) { s.Requires = []string{"bad"} }),
	)
	w.waitState("bad", contract.StateFailed, 10*time.Second)
	row := w.waitState("app", contract.StateFailed, 10*time.Second)
	if !strings.Contains(row.Message, "bad") {
		t.Errorf("requirer's message should name the dependency: %+v", row)
	}
	if _, err := os.Stat(w.layout().ReadyFile(w.label("bad"))); err == nil {
		t.Errorf("failed oneshot wrote a ready marker")
	}
}

func TestRequiresWaitsForCommandHealthcheck(t *testing.T) {
	w := newWorld(t)
	up := filepath.Join(w.proj, "up")
	w.grow(
		svc("db", `exec sleep 1000`, func(s *spec.Service) { s.Healthcheck = "test -f " + up }),
		svc("web", `test -f `+up+` || exit 9; exec sleep 1000`, func(s *spec.Service) { s.Requires = []string{"db"} }),
	)
	w.waitState("db", contract.StateRunning, 10*time.Second)
	if row := w.survey()["web"]; row.State != contract.StateWaiting {
		t.Errorf("web should wait for an unhealthy db, got %+v", row)
	}
	// The test decides when db turns healthy.
	if err := os.WriteFile(up, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	w.waitRunningHealthy("db", 15*time.Second)
	w.waitRunningHealthy("web", 15*time.Second)
	if _, err := os.Stat(w.layout().ReadyFile(w.label("db"))); err != nil {
		t.Errorf("healthy service ready marker: %v", err)
	}
}

func TestRequiresTimesOutOnUnhealthyDependency(t *testing.T) {
	w := newWorld(t)
	w.grow(
		svc("db", `exec sleep 1000`, func(s *spec.Service) { s.Healthcheck = "false"; s.ReadinessTimeout = "1s" }),
		svc("web", `exec sleep 1000`, func(s *spec.Service) { s.Requires = []string{"db"} }),
	)
	row := w.waitState("web", contract.StateFailed, 15*time.Second)
	if !strings.Contains(row.Message, "db") || !strings.Contains(row.Message, "not ready within 1s") {
		t.Errorf("want a failure naming db and its timeout, got %+v", row)
	}
	if row := w.survey()["db"]; row.State != contract.StateRunning || row.Healthy {
		t.Errorf("db should be running and unhealthy, got %+v", row)
	}
}

func TestAfterProceedsPastFailingDependency(t *testing.T) {
	w := newWorld(t)
	w.grow(
		svc("broken", `exit 1`),
		svc("off", `exec sleep 1000`, func(s *spec.Service) { s.Disabled = true }),
		svc("web", `exec sleep 1000`, func(s *spec.Service) { s.After = []string{"broken", "off"} }),
	)
	w.waitState("broken", contract.StateFailed, 10*time.Second)
	w.waitRunningHealthy("web", 10*time.Second)
	if _, ok := w.survey()["off"]; ok {
		t.Errorf("disabled service has a status")
	}
}

func TestDisabledSkippedUnlessNamed(t *testing.T) {
	w := newWorld(t)
	off := svc("off", `exec sleep 1000`, func(s *spec.Service) { s.Disabled = true })
	on := svc("on", `exec sleep 1000`)
	res := w.grow(on, off)
	if len(res.Skipped) != 1 || res.Skipped[0].Service != "off" || len(res.Started) != 1 || res.Started[0] != "on" {
		t.Fatalf("want on started and off skipped, got %+v", res)
	}
	w.waitRunningHealthy("on", 10*time.Second)
	if _, ok := w.survey()["off"]; ok {
		t.Fatalf("disabled service started")
	}
	res = w.tend(platform.TendOptions{Only: []string{"off"}}, on, off)
	if len(res.Started) != 1 || res.Started[0] != "off" {
		t.Fatalf("naming a disabled service should start it: %+v", res)
	}
	w.waitRunningHealthy("off", 10*time.Second)
}

func TestSkipReportedAndRestStarts(t *testing.T) {
	w := newWorld(t)
	img := spec.Service{Name: "img", Mode: spec.ModeContainer, Image: "busybox", Recreate: "never", Restart: spec.Restart{Policy: spec.RestartNo}}
	res := w.grow(img, svc("host", `exec sleep 1000`))
	if len(res.Skipped) != 1 || res.Skipped[0].Service != "img" || !strings.Contains(res.Skipped[0].Reason, "FROM") {
		t.Errorf("want img skipped with a reason, got %+v", res)
	}
	w.waitRunningHealthy("host", 10*time.Second)
}

func TestTimeoutStopKillsTermIgnorer(t *testing.T) {
	w := newWorld(t)
	pidf := filepath.Join(w.proj, "pid")
	w.grow(svc("stubborn", `trap '' TERM; `+hostPid(pidf)+`; while :; do sleep 1; done`, func(s *spec.Service) {
		s.Timeouts.Stop = "1s"
	}))
	w.waitRunningHealthy("stubborn", 10*time.Second)
	pid := pidFrom(t, pidf)
	start := time.Now()
	w.fell()
	took := time.Since(start)
	if alive(pid) {
		t.Fatalf("service %d survived fell", pid)
	}
	if took < time.Second || took > 8*time.Second {
		t.Errorf("fell took %s; want TIMEOUT_STOP (1s) <= took < 8s", took)
	}
	if left := ours(w.env.StateDir, w.proj); len(left) > 0 {
		t.Errorf("left after fell: %v", left)
	}
}

func TestFellLeavesNothing(t *testing.T) {
	w := newWorld(t)
	var pidfiles []string
	var svcs []spec.Service
	for _, n := range []string{"a", "b", "c"} {
		main, gc := filepath.Join(w.proj, n+".pid"), filepath.Join(w.proj, n+".gc")
		pidfiles = append(pidfiles, main, gc)
		svcs = append(svcs, svc(n, bgSleeper(main, gc)))
	}
	svcs = append(svcs, svc("hc", `exec sleep 1000`, func(s *spec.Service) { s.Healthcheck = "true" }))
	w.grow(svcs...)
	var pids []int
	for _, p := range pidfiles {
		pids = append(pids, pidFrom(t, p))
	}
	w.waitRunningHealthy("hc", 10*time.Second)
	w.fell()
	for _, p := range pids {
		if alive(p) {
			t.Errorf("pid %d survived fell", p)
		}
	}
	if left := ours(w.env.StateDir, w.proj); len(left) > 0 {
		t.Errorf("left after fell: %v", left)
	}
	if rows := w.survey(); len(rows) != 0 {
		t.Errorf("survey after fell: %+v", rows)
	}
	for _, d := range []string{w.layout().RunDir(), w.layout().StatusDir()} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("%s not empty after fell: %v", d, ents)
		}
	}
	if _, err := os.Stat(w.layout().LogFile(w.label("a"))); err != nil {
		t.Errorf("fell should keep logs: %v", err)
	}
	// Fell on an empty state dir succeeds.
	w.fell()
}

func TestSupervisorKillLeavesNoOrphans(t *testing.T) {
	w := newWorld(t)
	main, gc := filepath.Join(w.proj, "main.pid"), filepath.Join(w.proj, "gc.pid")
	w.grow(svc("victim", bgSleeper(main, gc), func(s *spec.Service) { s.Timeouts.Stop = "1s" }))
	mainPid, gcPid := pidFrom(t, main), pidFrom(t, gc)
	w.waitRunningHealthy("victim", 10*time.Second)
	st, err := readStatus(w.layout().StatusFile(w.label("victim")))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.SupervisorPid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill supervisor: %v", err)
	}
	// Bounded: the init's TIMEOUT_STOP (1s) plus scheduling slack.
	waitGone(t, 5*time.Second, st.SupervisorPid, mainPid, gcPid)
	deadline := time.Now().Add(5 * time.Second)
	for len(ours(w.env.StateDir, w.proj)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("left after supervisor SIGKILL: %v", ours(w.env.StateDir, w.proj))
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
	row := w.survey()["victim"]
	if row.State != contract.StateFailed || row.Message != "supervisor died" {
		t.Errorf("survey after supervisor death: %+v", row)
	}
}

func TestStdoutStderrPaths(t *testing.T) {
	w := newWorld(t)
	out := filepath.Join(w.proj, "logs", "${SERVICE_NAME}.out")
	errp := filepath.Join(w.proj, "deep", "er", "r.log")
	w.grow(svc("talker", `echo to-out; echo to-err >&2`, func(s *spec.Service) {
		s.Oneshot = true
		s.Logging = spec.Logging{Stdout: out, Stderr: errp}
	}))
	w.waitState("talker", contract.StateExited, 10*time.Second)
	outp := filepath.Join(w.proj, "logs", "talker.out")
	if got := readFile(outp); got != "to-out\n" {
		t.Errorf("stdout file: %q", got)
	}
	if got := readFile(errp); got != "to-err\n" {
		t.Errorf("stderr file: %q", got)
	}
	for _, p := range []string{outp, errp} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: want mode 0600, got %v (%v)", p, fi.Mode(), err)
		}
	}
	// Appended, not truncated, on the next run.
	w.fell()
	w.grow(svc("talker", `echo again`, func(s *spec.Service) {
		s.Oneshot = true
		s.Logging = spec.Logging{Stdout: out, Stderr: errp}
	}))
	w.waitState("talker", contract.StateExited, 10*time.Second)
	if got := readFile(outp); got != "to-out\nagain\n" {
		t.Errorf("stdout file after second run: %q", got)
	}
}

// hostPid is shell that writes the shell's pid as the host sees it (services
// run in their own PID namespace, where $$ is small).
func hostPid(file string) string {
	return `read p _ < /proc/self/stat; echo $p > ` + file
}

// bgSleeper is a shell service with a grandchild sleeping in the background;
// both host pids are written to files.
func bgSleeper(main, gc string) string {
	return `sh -c '` + hostPid(gc) + `; exec sleep 1000' & ` + hostPid(main) + `; wait`
}

// cutting is a hand-made cutting with pre_start/post_stop, as a runtime other
// than bare may produce.
func (w *world) cutting(s spec.Service, pre, post string) contract.Cutting {
	c := contract.Cutting{Service: s, Process: contract.Process{Dir: w.proj}}
	c.Exec.Start = []string{"/bin/sh", "-c", s.RunCommand}
	if pre != "" {
		c.Exec.PreStart = []string{"/bin/sh", "-c", pre}
	}
	if post != "" {
		c.Exec.PostStop = []string{"/bin/sh", "-c", post}
	}
	return c
}

func (w *world) tendBeds(b contract.Beds) platform.TendResult {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := w.p.Tend(ctx, b, platform.TendOptions{})
	if err != nil {
		w.t.Fatalf("tend: %v", err)
	}
	return res
}

func TestPreStartFailureAborts(t *testing.T) {
	w := newWorld(t)
	ran := filepath.Join(w.proj, "ran")
	w.tendBeds(w.plant(w.cutting(svc("guarded", `touch `+ran+`; exec sleep 1000`, restart(spec.RestartAlways, 5, "10s")), `exit 5`, "")))
	row := w.waitState("guarded", contract.StateFailed, 10*time.Second)
	if !strings.Contains(row.Message, "pre_start exited with code 5") || row.Restarts != 0 {
		t.Errorf("want an aborting pre_start failure, got %+v", row)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Errorf("start ran although pre_start failed")
	}
}

func TestPreStartPostStopAndGracefulStop(t *testing.T) {
	w := newWorld(t)
	order := filepath.Join(w.proj, "order")
	w.tendBeds(w.plant(w.cutting(
		svc("full", `echo start >> `+order+`; trap 'echo term >> `+order+`; exit 0' TERM; while :; do sleep 0.1; done`),
		`echo pre >> `+order, `echo post >> `+order)))
	w.waitRunningHealthy("full", 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readFile(order), "start") {
		if time.Now().After(deadline) {
			t.Fatalf("service never started: %q", readFile(order))
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
	st, err := readStatus(w.layout().StatusFile(w.label("full")))
	if err != nil {
		t.Fatal(err)
	}
	// SIGTERM to the supervisor stops the service, runs post_stop, exits.
	if err := syscall.Kill(st.SupervisorPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, 10*time.Second, st.SupervisorPid)
	row := w.survey()["full"]
	if row.State != contract.StateStopped || row.ExitCode == nil || *row.ExitCode != 0 {
		t.Errorf("after SIGTERM: want stopped with exit code 0, got %+v", row)
	}
	if got := strings.Fields(readFile(order)); strings.Join(got, " ") != "pre start term post" {
		t.Errorf("order = %q, want pre start term post", got)
	}
	exit := supervisorExit(t, w.layout().SuperviseLog(w.label("full")))
	if exit != "" {
		t.Errorf("supervisor reported an error on a clean stop: %s", exit)
	}
}

// supervisorExit returns the supervisor's final error line, if any.
func supervisorExit(t *testing.T, log string) string {
	t.Helper()
	for _, l := range strings.Split(readFile(log), "\n") {
		if strings.HasPrefix(l, "orchd:") {
			return l
		}
	}
	return ""
}

func TestStartProblemsAreReported(t *testing.T) {
	w := newWorld(t)
	w.grow(
		svc("nodir", `exec sleep 1000`, func(s *spec.Service) { s.Workdir = "does/not/exist" }),
		svc("noenv", `exec sleep 1000`, func(s *spec.Service) { s.EnvFiles = []string{filepath.Join(w.proj, "missing.env")} }),
		svc("nouser", `exec sleep 1000`, func(s *spec.Service) { s.User = "no-such-user-orchd" }),
		svc("nocmd", `exec /does/not/exist`),
	)
	for name, want := range map[string]string{
		"nodir":  "workdir",
		"noenv":  "missing.env",
		"nouser": "no-such-user-orchd",
		"nocmd":  "exited with code 127",
	} {
		row := w.waitState(name, contract.StateFailed, 10*time.Second)
		if !strings.Contains(row.Message, want) {
			t.Errorf("%s: message %q should mention %q", name, row.Message, want)
		}
	}
}

func TestRegrowAfterSupervisorKillWaitsForOldService(t *testing.T) {
	w := newWorld(t)
	pids := filepath.Join(w.proj, "pids")
	s := svc("sticky", `trap '' TERM; read p _ < /proc/self/stat; echo $p >> `+pids+`; while :; do sleep 0.1; done`,
		func(s *spec.Service) { s.Timeouts.Stop = "2s" })
	w.grow(s)
	old := pidFrom(t, pids)
	w.waitRunningHealthy("sticky", 10*time.Second)
	st, err := readStatus(w.layout().StatusFile(w.label("sticky")))
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(st.SupervisorPid, syscall.SIGKILL)
	waitGone(t, 5*time.Second, st.SupervisorPid)
	// The old service ignores SIGTERM: its init holds it for TIMEOUT_STOP.
	res := w.grow(s)
	if len(res.Started) != 1 {
		t.Fatalf("regrow: %+v", res)
	}
	if alive(old) {
		t.Fatalf("regrow started a new supervisor while the old service %d still ran", old)
	}
	w.waitRunningHealthy("sticky", 10*time.Second)
}
