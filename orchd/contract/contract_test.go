package contract

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/spec"
)

// roundTrip encodes v, decodes it into a fresh value of the same type with
// unknown fields refused, and requires the two to be equal.
func roundTrip[T any](t *testing.T, v T) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got T
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Errorf("round trip changed the value:\n got %+v\nwant %+v", got, v)
	}
}

func TestRoundTrips(t *testing.T) {
	cpus := 0.5
	svc := spec.Service{Name: "web", Mode: spec.ModeContainer, Image: "img", Cmd: "serve",
		Publish: []spec.Publish{{Host: 8080, Container: 80, HostIP: "127.0.0.1"}},
		Volumes: []spec.Volume{{Source: "data", Destination: "/d", IsNamed: true}},
		Env:     map[string]string{"K": "v"}, Requires: []string{"db"}, Recreate: "never",
		Restart:   spec.Restart{Policy: spec.RestartOnFailure, Delay: "1s", StartLimitBurst: 5, StartLimitInterval: "10s"},
		Timeouts:  spec.Timeouts{Start: "90s", Stop: "10s"},
		Resources: spec.Resources{Memory: "64M", CPUs: &cpus, LimitNofile: 1024}}
	env := Env{ProjectDir: "/p", StateDir: "/s", DataDir: "/s/data", Namespace: "orch", Orchd: "/bin/orchd"}
	roundTrip(t, Cuttings{Version: Version, Runtime: "containerd", Env: env, Cuttings: []Cutting{{
		Service: svc,
		Exec:    Exec{PreStart: []string{"a"}, Start: []string{"/bin/orchd", "containerd-run"}, Stop: []string{"b"}, PostStop: []string{"c"}},
		Process: Process{Dir: "/p", User: "app", Env: map[string]string{"A": "1"}, EnvFiles: []string{"/p/e"},
			Rlimits: []Rlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 2}}, Resources: &svc.Resources},
		Files: []File{{Path: "/s/run/orch.web.crun.json", Content: "{}", Mode: 0o600}},
	}}})
	roundTrip(t, Beds{Version: Version, Platform: "orchdi", Namespace: "orch", Scope: "user", StateDir: "/s", Beds: []Bed{{
		Label: "orch.web", Service: "web", Requires: []string{"db"}, After: []string{"x"},
		Artifacts: []Artifact{{Kind: KindUnit, Path: "/s/run/orch.web.unit.json", Content: "{}", Mode: 0o600}},
	}}})
	roundTrip(t, Unit{Version: Version, Label: "orch.web", Service: "web", Namespace: "orch", Runtime: "bare", StateDir: "/s",
		Exec: Exec{Start: []string{"/bin/sh", "-c", "x"}}, Healthcheck: "http://127.0.0.1/", ReadinessTimeout: "30s",
		Restart: svc.Restart, Timeouts: svc.Timeouts, Stdout: "/s/logs/a", Stderr: "/s/logs/a",
		Requires: []Dependency{{Service: "db", Label: "orch.db", Oneshot: true, ReadinessTimeout: "90s"}}})
	code := 3
	roundTrip(t, Status{Label: "orch.web", Service: "web", State: StateRunning, Pid: 10, SupervisorPid: 9, Restarts: 2,
		ExitCode: &code, Healthy: true, Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), UnitHash: "abc"})
}

func TestLayoutAndLabel(t *testing.T) {
	l := Layout{StateDir: "/s"}
	lbl := Label("orch", "web")
	if lbl != "orch.web" {
		t.Fatalf("label = %q", lbl)
	}
	for got, want := range map[string]string{
		l.UnitFile(lbl): "/s/run/orch.web.unit.json", l.CrunFile(lbl): "/s/run/orch.web.crun.json",
		l.PidFile(lbl): "/s/run/orch.web.pid", l.StatusFile(lbl): "/s/status/orch.web.json",
		l.ReadyFile(lbl): "/s/status/orch.web.ready", l.LogFile(lbl): "/s/logs/orch.web.log",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}

func TestProjectPath(t *testing.T) {
	e := Env{ProjectDir: "/p"}
	if got := e.ProjectPath("a/b"); got != "/p/a/b" {
		t.Errorf("relative: %s", got)
	}
	if got := e.ProjectPath("/abs"); got != "/abs" {
		t.Errorf("absolute: %s", got)
	}
	if got := e.ProjectPaths([]string{"x", "/y"}); !reflect.DeepEqual(got, []string{"/p/x", "/y"}) {
		t.Errorf("paths: %v", got)
	}
}
