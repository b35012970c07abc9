package launchd_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/orchd/orchd/internal/syncbuf"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/orchard"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/platform/launchd"
	"github.com/orchd/orchd/orchd/spec"
)

var update = flag.Bool("update", false, "rewrite the golden plists under testdata/golden")

// recordingLaunchctl stands in for /bin/launchctl, which exists only on
// macOS: it records the exact argv of every call and answers `print` for
// the jobs it was told are loaded.
type recordingLaunchctl struct {
	mu     sync.Mutex // logs -f polls print beside fell
	calls  [][]string
	loaded map[string]string // print target -> its output
}

func (r *recordingLaunchctl) Run(_ context.Context, args ...string) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, args)
	switch args[0] {
	case "print":
		if out, ok := r.loaded[args[1]]; ok {
			return []byte(out), nil
		}
		return nil, fmt.Errorf("launchctl print %s: exit status 113: Could not find service", args[1])
	case "bootstrap":
		var j launchd.Job
		b, err := os.ReadFile(args[2])
		if err != nil {
			return nil, err
		}
		if _, err := plist.Unmarshal(b, &j); err != nil {
			return nil, err
		}
		r.loaded[args[1]+"/"+j.Label] = "\tstate = running\n\tpid = 4242\n\truns = 1\n"
	case "bootout":
		delete(r.loaded, args[1])
	}
	return nil, nil
}

func (r *recordingLaunchctl) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		out = append(out, strings.Join(c, " "))
	}
	r.calls = nil
	return out
}

func env(state string) contract.Env {
	return contract.Env{ProjectDir: "/srv/proj", StateDir: state, DataDir: state + "/data", Namespace: "shop", Orchd: "/usr/local/bin/orchd"}
}

func plantTestdata(t *testing.T, p *launchd.Platform, e contract.Env) contract.Beds {
	t.Helper()
	s, err := spec.ParseFiles([]string{"testdata/Orchfile"}, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := orchard.Runtime("bare")
	c, err := orchard.Sow(s, rt, e)
	if err != nil {
		t.Fatal(err)
	}
	b, err := orchard.Plant(c, p, "")
	if err != nil {
		t.Fatal(err)
	}
	return *b
}

func TestPlantGoldenPlistsDecode(t *testing.T) {
	p := launchd.New("user", launchd.WithJobDir("/Users/u/Library/LaunchAgents"))
	beds := plantTestdata(t, p, env("/var/lib/orch"))
	jobs := map[string]launchd.Job{}
	for _, b := range beds.Beds {
		for _, a := range b.Artifacts {
			if a.Kind != launchd.KindPlist {
				continue
			}
			if a.Mode != 0o644 || a.Path != "/Users/u/Library/LaunchAgents/orchd.shop."+b.Service+".plist" {
				t.Errorf("plist %s mode %o", a.Path, a.Mode)
			}
			golden := filepath.Join("testdata", "golden", filepath.Base(a.Path))
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				os.WriteFile(golden, []byte(a.Content), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run Golden -update creates it)", err)
			}
			if a.Content != string(want) {
				t.Errorf("%s differs from %s:\n%s", a.Path, golden, a.Content)
			}
			var j launchd.Job
			if _, err := plist.Unmarshal(want, &j); err != nil {
				t.Fatalf("%s does not decode: %v", golden, err)
			}
			jobs[b.Service] = j
		}
	}
	if len(jobs) != 3 {
		t.Fatalf("jobs %v, want db, web, cache (box is FROM, skipped by bare)", jobs)
	}
	web := jobs["web"]
	want := launchd.Job{
		Label: "orchd.shop.web",
		ProgramArguments: []string{"/usr/local/bin/orchd", "env-exec", "--env-file", "/srv/proj/secrets.env", "--env-file", "/var/lib/orch/run/shop.web.launchd.env", "--",
			"/bin/sh", "-c", `serve --msg "100% of $HOME is \"quoted\""`},
		WorkingDirectory: "/srv/proj/app", UserName: "daemon", RunAtLoad: true,
		KeepAlive: map[string]any{"SuccessfulExit": false}, ThrottleInterval: 3, ExitTimeOut: 7,
		StandardOutPath: "/srv/proj/logs/web.out", StandardErrorPath: "/var/log/web.err",
		SoftResourceLimits: map[string]int{"NumberOfFiles": 4096, "NumberOfProcesses": 512},
		HardResourceLimits: map[string]int{"NumberOfFiles": 4096, "NumberOfProcesses": 512},
		Orchd:              map[string]string{"namespace": "shop", "service": "web"},
	}
	if !reflect.DeepEqual(web, want) {
		t.Errorf("web decodes to\n%#v\nwant\n%#v", web, want)
	}
	if db := jobs["db"]; db.KeepAlive != false || db.ThrottleInterval != 0 {
		t.Errorf("a oneshot must not be kept alive: %#v", db)
	}
	if cache := jobs["cache"]; cache.KeepAlive != true || cache.ThrottleInterval != 1 {
		t.Errorf("RESTART always: %#v", cache)
	}
	for _, b := range beds.Beds {
		for _, a := range b.Artifacts {
			if a.Kind == launchd.KindPlist && strings.Contains(a.Content, "hunter2") {
				t.Errorf("plist %s holds an ENV value", a.Path)
			}
			if a.Kind == launchd.KindEnv && (a.Mode != 0o600 || !strings.Contains(a.Content, "SECRET=hunter2-never-in-a-unit\n")) {
				t.Errorf("env file %s mode %o:\n%s", a.Path, a.Mode, a.Content)
			}
		}
	}
}

func TestLaunchctlCalls(t *testing.T) {
	d := t.TempDir()
	ctl := &recordingLaunchctl{loaded: map[string]string{}}
	p := launchd.New("user", launchd.WithJobDir(filepath.Join(d, "agents")), launchd.WithLaunchctl(ctl, 501))
	e := env(filepath.Join(d, "state"))
	beds := plantTestdata(t, p, e)
	ctx := context.Background()
	res, err := p.Tend(ctx, beds, platform.TendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	agents := filepath.Join(d, "agents")
	// db first: web REQUIRES it. cache is DISABLED.
	want := []string{
		"print gui/501/orchd.shop.db", "bootstrap gui/501 " + agents + "/orchd.shop.db.plist",
		"print gui/501/orchd.shop.web", "bootstrap gui/501 " + agents + "/orchd.shop.web.plist",
	}
	if got := ctl.take(); !slices.Equal(got, want) {
		t.Errorf("tend calls\n%q\nwant\n%q", got, want)
	}
	if !slices.Equal(res.Started, []string{"db", "web"}) || len(res.Skipped) != 2 {
		t.Errorf("result %+v", res)
	}
	// Unchanged: print only. Changed web: bootout, then bootstrap.
	if _, err := p.Tend(ctx, beds, platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := ctl.take(); !slices.Equal(got, []string{"print gui/501/orchd.shop.db", "print gui/501/orchd.shop.web"}) {
		t.Errorf("regrow calls %q", got)
	}
	for i, b := range beds.Beds {
		if b.Service == "web" {
			for k, a := range b.Artifacts {
				if a.Kind == launchd.KindPlist {
					beds.Beds[i].Artifacts[k].Content = strings.Replace(a.Content, "<integer>7</integer>", "<integer>8</integer>", 1)
				}
			}
		}
	}
	if _, err := p.Tend(ctx, beds, platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	want = []string{"print gui/501/orchd.shop.db", "print gui/501/orchd.shop.web", "bootout gui/501/orchd.shop.web", "bootstrap gui/501 " + agents + "/orchd.shop.web.plist"}
	if got := ctl.take(); !slices.Equal(got, want) {
		t.Errorf("changed calls\n%q\nwant\n%q", got, want)
	}

	rows, err := p.Survey(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	// cache is installed but DISABLED, so never bootstrapped.
	if len(rows) != 3 || rows[0].Name != "cache" || rows[0].State != "stopped" || rows[0].Message != "not loaded" ||
		rows[2].Name != "web" || rows[2].State != "running" || rows[2].Pid != 4242 {
		t.Errorf("survey %+v", rows)
	}
	ctl.take()
	if err := p.Fell(ctx, e, platform.FellOptions{}); err != nil {
		t.Fatal(err)
	}
	want = []string{"print gui/501/orchd.shop.cache", "print gui/501/orchd.shop.db", "bootout gui/501/orchd.shop.db", "print gui/501/orchd.shop.web", "bootout gui/501/orchd.shop.web"}
	if got := ctl.take(); !slices.Equal(got, want) {
		t.Errorf("fell calls\n%q\nwant\n%q", got, want)
	}
	if left, _ := filepath.Glob(filepath.Join(agents, "*")); len(left) != 0 {
		t.Errorf("plists left: %q", left)
	}
	if left, _ := filepath.Glob(filepath.Join(e.StateDir, "run", "*.env")); len(left) != 0 {
		t.Errorf("env files left: %q", left)
	}
}

func TestSystemDomain(t *testing.T) {
	d := t.TempDir()
	ctl := &recordingLaunchctl{loaded: map[string]string{}}
	p := launchd.New("system", launchd.WithJobDir(d), launchd.WithLaunchctl(ctl, 0))
	e := env(filepath.Join(d, "state"))
	b := plantTestdata(t, p, e)
	if _, err := p.Tend(context.Background(), b, platform.TendOptions{Only: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	if got := ctl.take(); !slices.Equal(got, []string{"print system/orchd.shop.db", "bootstrap system " + d + "/orchd.shop.db.plist"}) {
		t.Errorf("system calls %q", got)
	}
}

func TestNotMacOSIsOneLine(t *testing.T) {
	if launchd.New("user").Name() != "launchd" {
		t.Fatal("name")
	}
	p := launchd.New("user", launchd.WithJobDir(t.TempDir()))
	_, err := p.Survey(context.Background(), env(t.TempDir()))
	if isDarwin := err == nil; isDarwin {
		return // on macOS the real launchctl answers
	}
	if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "launchd runs only on macOS") || !strings.Contains(err.Error(), "--platform orchdi") {
		t.Errorf("err = %v", err)
	}
}

// fell SERVICE boots out only that job; --volumes (whole namespace only)
// removes the namespace's named volumes and nothing else of the data dir.
func TestFellNamedAndVolumes(t *testing.T) {
	d := t.TempDir()
	ctl := &recordingLaunchctl{loaded: map[string]string{}}
	agents := filepath.Join(d, "agents")
	p := launchd.New("user", launchd.WithJobDir(agents), launchd.WithLaunchctl(ctl, 501))
	e := env(filepath.Join(d, "state"))
	ctx := context.Background()
	if _, err := p.Tend(ctx, plantTestdata(t, p, e), platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	vol := contract.NamedVolume(e.DataDir, e.Namespace, "pgdata")
	other := contract.NamedVolume(e.DataDir, "other", "pgdata")
	kept := filepath.Join(e.DataDir, "kept.txt")
	for _, f := range []string{filepath.Join(vol, "f"), filepath.Join(other, "f"), kept} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctl.take()
	if err := p.Fell(ctx, e, platform.FellOptions{Services: []string{"web"}, Volumes: true}); err == nil {
		t.Error("fell web --volumes: want a refusal")
	}
	if got := ctl.take(); len(got) != 0 {
		t.Errorf("a refused fell called launchctl: %q", got)
	}
	if err := p.Fell(ctx, e, platform.FellOptions{Services: []string{"web"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := ctl.take(), []string{"print gui/501/orchd.shop.web", "bootout gui/501/orchd.shop.web"}; !slices.Equal(got, want) {
		t.Errorf("fell web calls %q, want %q", got, want)
	}
	left, _ := filepath.Glob(filepath.Join(agents, "*.plist"))
	if want := []string{agents + "/orchd.shop.cache.plist", agents + "/orchd.shop.db.plist"}; !slices.Equal(left, want) {
		t.Errorf("plists after fell web: %q, want %q", left, want)
	}
	if _, err := os.Stat(vol); err != nil {
		t.Errorf("fell web touched the named volumes: %v", err)
	}
	if err := p.Fell(ctx, e, platform.FellOptions{Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vol); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fell --volumes kept %s: %v", vol, err)
	}
	for _, f := range []string{filepath.Join(other, "f"), kept} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("fell --volumes removed %s: %v", f, err)
		}
	}
}

// logs -f ends once the job is felled, after printing what it wrote.
func TestLogsFollowEndsAtFell(t *testing.T) {
	d := t.TempDir()
	ctl := &recordingLaunchctl{loaded: map[string]string{}}
	p := launchd.New("user", launchd.WithJobDir(filepath.Join(d, "agents")), launchd.WithLaunchctl(ctl, 501))
	e := env(filepath.Join(d, "state"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Tend(ctx, plantTestdata(t, p, e), platform.TendOptions{}); err != nil {
		t.Fatal(err)
	}
	log := contract.Layout{StateDir: e.StateDir}.LogFile(contract.Label(e.Namespace, "db"))
	if err := os.WriteFile(log, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- p.Logs(ctx, e, "db", &buf, platform.LogOptions{Follow: true, Lines: -1}) }()
	f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("two\n")
	f.Close()
	if err := p.Fell(ctx, e, platform.FellOptions{Services: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil || buf.String() != "one\ntwo\n" {
			t.Errorf("logs -f: %q, %v; want one and two", buf.String(), err)
		}
	case <-ctx.Done():
		t.Fatal("logs -f did not end after fell")
	}
}
