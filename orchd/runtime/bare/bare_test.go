package bare

import (
	"reflect"
	"strings"
	"testing"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

func TestCutHostService(t *testing.T) {
	env := contract.Env{ProjectDir: "/proj", StateDir: "/state", Namespace: "orch"}
	svc := spec.Service{Name: "web", Mode: spec.ModeHost, RunCommand: "serve --port 1", StopCommand: "kill 1",
		User: "nobody", Workdir: "app", Env: map[string]string{"A": "1"}, EnvFiles: []string{"/e", "secrets.env"},
		Resources: spec.Resources{LimitNofile: 100, LimitNproc: 50}}
	c, err := New().Cut(svc, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Skip != "" {
		t.Fatalf("skip: %s", c.Skip)
	}
	if want := []string{"/bin/sh", "-c", "serve --port 1"}; !reflect.DeepEqual(c.Exec.Start, want) {
		t.Errorf("start = %q", c.Exec.Start)
	}
	if want := []string{"/bin/sh", "-c", "kill 1"}; !reflect.DeepEqual(c.Exec.Stop, want) {
		t.Errorf("stop = %q", c.Exec.Stop)
	}
	want := contract.Process{Dir: "/proj/app", User: "nobody", Env: map[string]string{"A": "1"}, EnvFiles: []string{"/e", "/proj/secrets.env"},
		Rlimits: []contract.Rlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 100}, {Type: "RLIMIT_NPROC", Soft: 50, Hard: 50}}}
	if !reflect.DeepEqual(c.Process, want) {
		t.Errorf("process = %+v, want %+v", c.Process, want)
	}
}

func TestCutWorkdirDefaultsAndAbsolute(t *testing.T) {
	env := contract.Env{ProjectDir: "/proj"}
	c, _ := New().Cut(spec.Service{Name: "a", Mode: spec.ModeHost, RunCommand: "x"}, env)
	if c.Process.Dir != "/proj" {
		t.Errorf("default dir = %q, want the project dir", c.Process.Dir)
	}
	c, _ = New().Cut(spec.Service{Name: "a", Mode: spec.ModeHost, RunCommand: "x", Workdir: "/srv"}, env)
	if c.Process.Dir != "/srv" {
		t.Errorf("absolute dir = %q", c.Process.Dir)
	}
}

func TestCutContainerServiceIsSkipped(t *testing.T) {
	c, err := New().Cut(spec.Service{Name: "db", Mode: spec.ModeContainer, Image: "postgres:16"}, contract.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Skip, "FROM postgres:16") || !strings.Contains(c.Skip, "--runtime containerd") {
		t.Errorf("skip reason should name the image and the way out: %q", c.Skip)
	}
	if len(c.Exec.Start) != 0 {
		t.Errorf("skipped cutting has a start command: %q", c.Exec.Start)
	}
}
