package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orchd/orchd/internal/syncbuf"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/spec"
)

// recordingManager stands in for the systemd manager in unit tests of what
// tend and fell ask of it. It records every call and keeps a unit's state
// as a real manager would after each job; it proves the calls, not
// systemd's behaviour (the platforms suite does that against a real one).
type recordingManager struct {
	mu     sync.Mutex
	calls  []string
	states map[string]unitState
	fail   map[string]error // unit -> error of its next start
}

func newRecordingManager() *recordingManager {
	return &recordingManager{states: map[string]unitState{}, fail: map[string]error{}}
}

func (r *recordingManager) rec(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, a...))
}

func (r *recordingManager) set(unit, active, sub string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[unit] = unitState{Name: unit, LoadState: "loaded", ActiveState: active, SubState: sub}
}

func (r *recordingManager) Reload(context.Context) error { r.rec("daemon-reload"); return nil }
func (r *recordingManager) Start(_ context.Context, u string) error {
	r.rec("start %s", u)
	if err := r.fail[u]; err != nil {
		r.set(u, "failed", "failed")
		return err
	}
	r.set(u, "active", "running")
	return nil
}
func (r *recordingManager) Restart(_ context.Context, u string) error {
	r.rec("restart %s", u)
	r.set(u, "active", "running")
	return nil
}
func (r *recordingManager) Stop(_ context.Context, u string) error {
	r.rec("stop %s", u)
	r.set(u, "inactive", "dead")
	return nil
}
func (r *recordingManager) ReloadUnit(_ context.Context, u string) error {
	r.rec("reload %s", u)
	return nil
}
func (r *recordingManager) ResetFailed(_ context.Context, u string) error {
	r.rec("reset-failed %s", u)
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.states[u]; ok && st.ActiveState == "failed" {
		st.ActiveState, st.SubState = "inactive", "dead"
		r.states[u] = st
	}
	return nil
}
func (r *recordingManager) State(_ context.Context, u string) (unitState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.states[u]; ok {
		return st, nil
	}
	return unitState{Name: u, LoadState: "not-found", ActiveState: "inactive", SubState: "dead"}, nil
}
func (r *recordingManager) Loaded(_ context.Context, patterns []string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for u, st := range r.states {
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, u); ok && st.ActiveState != "inactive" {
				out = append(out, u)
			}
		}
	}
	return out, nil
}
func (r *recordingManager) Close() {}

// sorted returns the calls, those that run concurrently in sorted order.
func (r *recordingManager) sorted() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.calls)
	slices.Sort(out)
	return out
}

type world struct {
	t   *testing.T
	p   *Platform
	m   *recordingManager
	env contract.Env
}

func newWorld(t *testing.T) *world {
	d := t.TempDir()
	m := newRecordingManager()
	host := Host{PID1: "systemd", Answers: func(context.Context, string) error { return nil }}
	p := New("user", WithUnitDir(filepath.Join(d, "units")), WithHost(host),
		withManager(func(context.Context, string) (manager, error) { return m, nil }))
	env := contract.Env{ProjectDir: d, StateDir: filepath.Join(d, "state"), DataDir: filepath.Join(d, "state", "data"), Namespace: "ns", Orchd: "/usr/local/bin/orchd"}
	return &world{t: t, p: p, m: m, env: env}
}

func (w *world) beds(svcs ...spec.Service) contract.Beds {
	c := contract.Cuttings{Version: contract.Version, Runtime: "bare", Env: w.env}
	for _, s := range svcs {
		c.Cuttings = append(c.Cuttings, contract.Cutting{Service: s, Exec: contract.Exec{Start: []string{"/bin/sh", "-c", s.RunCommand}},
			Process: contract.Process{Dir: w.env.ProjectDir, Env: s.Env}})
	}
	b, err := w.p.Plant(c, "user")
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func host(name, run string) spec.Service {
	return spec.Service{Name: name, Mode: spec.ModeHost, RunCommand: run, Env: map[string]string{"TOKEN": "s3cret-" + name}}
}

func TestTendWritesReloadsStarts(t *testing.T) {
	w := newWorld(t)
	db := host("db", "db")
	off := host("off", "x")
	off.Disabled = true
	res, err := w.p.Tend(context.Background(), w.beds(db, host("web", "web"), off), platform.TendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"daemon-reload", "start orch-ns-db.service", "start orch-ns-web.service"}; !slices.Equal(w.m.sorted(), want) {
		t.Errorf("calls %q, want %q", w.m.sorted(), want)
	}
	if !slices.Equal(res.Started, []string{"db", "web"}) || len(res.Skipped) != 1 {
		t.Errorf("result %+v", res)
	}
	fi, err := os.Stat(filepath.Join(w.p.unitDir, "orch-ns-web.service"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("unit file: %v %v", fi, err)
	}
	fi, err = os.Stat(envFile(contract.Layout{StateDir: w.env.StateDir}, "ns.web"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("env file: %v %v", fi, err)
	}

	// Again, unchanged: nothing restarts. Changed: a restart. Failed: reset, then start.
	w.m.calls = nil
	w.m.set("orch-ns-db.service", "failed", "failed")
	changed := host("web", "web --new")
	res, err = w.p.Tend(context.Background(), w.beds(db, changed, off), platform.TendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"daemon-reload", "reset-failed orch-ns-db.service", "restart orch-ns-web.service", "start orch-ns-db.service"}; !slices.Equal(w.m.sorted(), want) {
		t.Errorf("calls %q, want %q", w.m.sorted(), want)
	}
	w.m.calls = nil
	res, err = w.p.Tend(context.Background(), w.beds(db, changed, off), platform.TendOptions{})
	if err != nil || !slices.Equal(res.Unchanged, []string{"db", "web"}) || !slices.Equal(w.m.sorted(), []string{"daemon-reload"}) {
		t.Errorf("regrow: %+v %v, calls %q", res, err, w.m.sorted())
	}
}

func TestTendNamedAndNoStart(t *testing.T) {
	w := newWorld(t)
	off := host("off", "x")
	off.Disabled = true
	if _, err := w.p.Tend(context.Background(), w.beds(host("a", "a"), off), platform.TendOptions{NoStart: true}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.m.sorted(), []string{"daemon-reload"}) {
		t.Errorf("--no-start calls %q", w.m.sorted())
	}
	w.m.calls = nil
	if _, err := w.p.Tend(context.Background(), w.beds(host("a", "a"), off), platform.TendOptions{Only: []string{"off"}}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"daemon-reload", "start orch-ns-off.service"}; !slices.Equal(w.m.sorted(), want) {
		t.Errorf("grow off: calls %q, want %q", w.m.sorted(), want)
	}
}

func TestTendReportsFailedJobs(t *testing.T) {
	w := newWorld(t)
	w.m.fail["orch-ns-bad.service"] = errors.New("job failed (unit result exit-code)")
	res, err := w.p.Tend(context.Background(), w.beds(host("bad", "false"), host("good", "true")), platform.TendOptions{})
	if err == nil || !strings.Contains(err.Error(), "tend bad: job failed") || !strings.Contains(err.Error(), "orchd logs bad") {
		t.Errorf("err = %v", err)
	}
	if !slices.Equal(res.Started, []string{"good"}) {
		t.Errorf("started %q", res.Started)
	}
}

func TestFellStopsRemovesReloadsResets(t *testing.T) {
	w := newWorld(t)
	if _, err := w.p.Tend(context.Background(), w.beds(host("a", "a"), host("b", "b")), platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	// A unit of another namespace whose name shares the prefix stays.
	other := filepath.Join(w.p.unitDir, "orch-ns-x-y.service")
	os.WriteFile(other, []byte("[Unit]\nX-Orchd-Namespace=ns-x\nX-Orchd-Service=y\n"), 0o644)
	w.m.calls = nil
	if err := w.p.Fell(context.Background(), w.env, platform.FellOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []string{"daemon-reload", "reset-failed orch-ns-a.service", "reset-failed orch-ns-b.service", "stop orch-ns-a.service", "stop orch-ns-b.service"}
	if !slices.Equal(w.m.sorted(), want) {
		t.Errorf("calls %q, want %q", w.m.sorted(), want)
	}
	left, _ := filepath.Glob(filepath.Join(w.p.unitDir, "*"))
	if !slices.Equal(left, []string{other}) {
		t.Errorf("unit dir holds %q, want only the other namespace's unit", left)
	}
	if envs, _ := filepath.Glob(filepath.Join(w.env.StateDir, "run", "*.env")); len(envs) != 0 {
		t.Errorf("env files left: %q", envs)
	}
}

func TestFellNamedStopsOnlyThose(t *testing.T) {
	w := newWorld(t)
	if _, err := w.p.Tend(context.Background(), w.beds(host("a", "a"), host("b", "b")), platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	w.m.calls = nil
	if err := w.p.Fell(context.Background(), w.env, platform.FellOptions{Services: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"daemon-reload", "reset-failed orch-ns-b.service", "stop orch-ns-b.service"}
	if !slices.Equal(w.m.sorted(), want) {
		t.Errorf("fell b: calls %q, want %q", w.m.sorted(), want)
	}
	if _, err := os.Stat(filepath.Join(w.p.unitDir, "orch-ns-a.service")); err != nil {
		t.Errorf("fell b removed a's unit: %v", err)
	}
	if err := w.p.Fell(context.Background(), w.env, platform.FellOptions{Services: []string{"a"}, Volumes: true}); err == nil {
		t.Errorf("fell a --volumes: want a refusal")
	}
}

func TestSurveyRows(t *testing.T) {
	w := newWorld(t)
	if _, err := w.p.Tend(context.Background(), w.beds(host("a", "a"), host("b", "b")), platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	// As systemd 252 leaves a unit that hit its start limit: the result of the
	// last run, and the refused restart counted in NRestarts.
	w.m.states["orch-ns-b.service"] = unitState{LoadState: "loaded", ActiveState: "failed", SubState: "failed", Result: "exit-code",
		Restart: "on-failure", NRestarts: 3, ExecMainCode: 1, ExecMainStatus: 2}
	rows, err := w.p.Survey(context.Background(), w.env)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Name != "a" || rows[0].State != "running" || !rows[0].Healthy {
		t.Fatalf("rows %+v", rows)
	}
	b := rows[1]
	if b.State != "failed" || b.Message != "start limit hit (exit-code)" || b.Restarts != 2 || b.ExitCode == nil || *b.ExitCode != 2 {
		t.Errorf("failed row %+v", b)
	}
}

func TestStatusRowStates(t *testing.T) {
	for _, tt := range []struct {
		active, sub, want string
	}{
		{"active", "running", "running"}, {"active", "exited", "exited"},
		{"activating", "start-post", "starting"}, {"activating", "auto-restart", "restarting"},
		{"failed", "failed", "failed"}, {"inactive", "dead", "stopped"}, {"deactivating", "stop-sigterm", "stopped"},
	} {
		if got := statusRow("ns", "s", unitState{LoadState: "loaded", ActiveState: tt.active, SubState: tt.sub}, timeZero).State; got != tt.want {
			t.Errorf("%s/%s -> %s, want %s", tt.active, tt.sub, got, tt.want)
		}
	}
	ran := statusRow("ns", "s", unitState{LoadState: "loaded", ActiveState: "inactive", SubState: "dead", ExecMainCode: 1}, timeZero)
	if ran.State != "exited" || ran.ExitCode == nil || *ran.ExitCode != 0 {
		t.Errorf("a main process that ended on its own: %+v, want exited with code 0", ran)
	}
	killed := statusRow("ns", "s", unitState{LoadState: "loaded", ActiveState: "failed", SubState: "failed", ExecMainCode: 2, ExecMainStatus: 9}, timeZero)
	if killed.ExitCode == nil || *killed.ExitCode != 137 {
		t.Errorf("killed by SIGKILL: %+v, want exit 137", killed)
	}
}

// TestUnavailableHereIsOneLine: on a host whose PID 1 is not systemd every
// side-effecting verb fails with the same one line, before writing anything.
func TestUnavailableHereIsOneLine(t *testing.T) {
	d := t.TempDir()
	p := New("user", WithUnitDir(filepath.Join(d, "units")), WithHost(Host{PID1: "tini"}))
	env := contract.Env{ProjectDir: d, StateDir: filepath.Join(d, "state"), Namespace: "ns", Orchd: "/bin/orchd"}
	b, err := p.Plant(contract.Cuttings{Version: contract.Version, Env: env, Cuttings: []contract.Cutting{{Service: host("a", "a"), Exec: contract.Exec{Start: []string{"/bin/true"}}}}}, "user")
	if err != nil {
		t.Fatalf("plant is pure and works anywhere: %v", err)
	}
	_, terr := p.Tend(context.Background(), b, platform.TendOptions{})
	_, serr := p.Survey(context.Background(), env)
	ferr := p.Fell(context.Background(), env, platform.FellOptions{})
	for _, err := range []error{terr, serr, ferr} {
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `PID 1 here is "tini"`) || !strings.Contains(err.Error(), "--platform orchdi") {
			t.Errorf("err = %v, want one line naming PID 1 and --platform orchdi", err)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "units")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tend wrote units although systemd cannot run them: %v", err)
	}
}

var timeZero = time.Time{}

// TestTendRestartsEndedServiceNotCompletedOneshot: a service that ended on
// its own (active/exited under RemainAfterExit) runs again on grow; a
// completed ONESHOT stays completed.
func TestTendRestartsEndedServiceNotCompletedOneshot(t *testing.T) {
	w := newWorld(t)
	job := host("job", "true")
	job.Oneshot = true
	beds := w.beds(host("app", "true"), job)
	if _, err := w.p.Tend(context.Background(), beds, platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	w.m.set("orch-ns-app.service", "active", "exited")
	w.m.set("orch-ns-job.service", "active", "exited")
	w.m.calls = nil
	res, err := w.p.Tend(context.Background(), beds, platform.TendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"daemon-reload", "restart orch-ns-app.service"}; !slices.Equal(w.m.sorted(), want) {
		t.Errorf("calls %q, want %q", w.m.sorted(), want)
	}
	if !slices.Equal(res.Unchanged, []string{"job"}) || !slices.Equal(res.Restarted, []string{"app"}) {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(unitText(t, beds, "app"), "\nRemainAfterExit=yes\n") {
		t.Errorf("a RESTART no service must keep its end state")
	}
}

func unitText(t *testing.T, beds contract.Beds, svc string) string {
	for _, b := range beds.Beds {
		for _, a := range b.Artifacts {
			if b.Service == svc && a.Kind == KindUnit {
				return a.Content
			}
		}
	}
	t.Fatalf("no unit for %s", svc)
	return ""
}

func TestReloadAsksTheManager(t *testing.T) {
	w := newWorld(t)
	svc := host("web", "serve")
	svc.ReloadCommand = "kill -HUP $MAINPID"
	c := contract.Cuttings{Version: contract.Version, Runtime: "bare", Env: w.env, Cuttings: []contract.Cutting{{Service: svc,
		Exec: contract.Exec{Start: []string{"/bin/sh", "-c", "serve"}, Reload: []string{"/bin/sh", "-c", svc.ReloadCommand}}}}}
	b, err := w.p.Plant(c, "user")
	if err != nil {
		t.Fatal(err)
	}
	if text := unitText(t, b, "web"); !strings.Contains(text, "\nExecReload=\"/bin/sh\" \"-c\" \"kill -HUP $$MAINPID\"\n") {
		t.Errorf("RELOAD not mapped to ExecReload=:\n%s", text)
	}
	if err := w.p.Reload(context.Background(), w.env, "web"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.m.sorted(), []string{"reload orch-ns-web.service"}) {
		t.Errorf("calls %q", w.m.sorted())
	}
}

// A HEALTHCHECK-gated unit reports HEALTH: starting while its start job
// waits, the relay's latest verdict (STATUS=health: ...) once active, healthy
// when a host service's health-wait let it start; an ungated unit none.
func TestSurveyHealth(t *testing.T) {
	w := newWorld(t)
	gated := host("db", "db")
	gated.Healthcheck = "http://127.0.0.1:1/health"
	if _, err := w.p.Tend(context.Background(), w.beds(gated, host("web", "web")), platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		st         unitState
		want       string
		wantHealth bool
	}{
		{unitState{ActiveState: "activating", SubState: "start-post"}, "starting", false},
		{unitState{ActiveState: "active", SubState: "running"}, "healthy", true},
		{unitState{ActiveState: "active", SubState: "running", StatusText: "health: unhealthy"}, "unhealthy", false},
		{unitState{ActiveState: "active", SubState: "running", StatusText: "health: healthy"}, "healthy", true},
		{unitState{ActiveState: "activating", SubState: "auto-restart"}, "", false},
		{unitState{ActiveState: "failed", SubState: "failed"}, "", false},
	} {
		tt.st.LoadState = "loaded"
		w.m.states["orch-ns-db.service"] = tt.st
		rows, err := w.p.Survey(context.Background(), w.env)
		if err != nil {
			t.Fatal(err)
		}
		if rows[0].Name != "db" || rows[0].Health != tt.want || rows[0].Healthy != tt.wantHealth {
			t.Errorf("%s/%s %q: health %q healthy %v, want %q %v", tt.st.ActiveState, tt.st.SubState, tt.st.StatusText,
				rows[0].Health, rows[0].Healthy, tt.want, tt.wantHealth)
		}
		if rows[1].Name != "web" || rows[1].Health != "" || !rows[1].Healthy {
			t.Errorf("ungated web: %+v", rows[1])
		}
	}
}

// logs reads stdout and stderr when they are split, and -f ends when the
// unit has ended, after printing what it wrote.
func TestLogsSplitAndFollowEnds(t *testing.T) {
	w := newWorld(t)
	svc := host("web", "web")
	svc.Logging = spec.Logging{Stdout: filepath.Join(w.env.ProjectDir, "web.out"), Stderr: filepath.Join(w.env.ProjectDir, "web.err")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := w.p.Tend(ctx, w.beds(svc), platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(svc.Logging.Stdout, []byte("out 1\n"), 0o600)
	os.WriteFile(svc.Logging.Stderr, []byte("err 1\n"), 0o600)
	var all bytes.Buffer
	if err := w.p.Logs(ctx, w.env, "web", &all, platform.LogOptions{Lines: -1}); err != nil || all.String() != "out 1\nerr 1\n" {
		t.Errorf("logs: %q, %v; want stdout then stderr", all.String(), err)
	}
	var buf syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- w.p.Logs(ctx, w.env, "web", &buf, platform.LogOptions{Follow: true, Lines: -1}) }()
	f, err := os.OpenFile(svc.Logging.Stderr, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("err 2\n")
	f.Close()
	w.m.set("orch-ns-web.service", "failed", "failed")
	select {
	case err := <-done:
		if err != nil || buf.String() != "out 1\nerr 1\nerr 2\n" {
			t.Errorf("logs -f: %q, %v; want both files and the appended line", buf.String(), err)
		}
	case <-ctx.Done():
		t.Fatal("logs -f did not end when the unit failed")
	}
}
