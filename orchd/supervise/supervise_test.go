package supervise

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

func TestResolveProcessPrecedence(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("K=a\nONLY_A=x\n"), 0o600)
	os.WriteFile(b, []byte("K=b\n"), 0o600)
	pc, err := resolveProcess(contract.Process{Dir: dir, EnvFiles: []string{a, b}, Env: map[string]string{"E": "e"}})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range pc.env {
		for i := 0; i < len(kv); i++ {
			if kv[i] == '=' {
				env[kv[:i]] = kv[i+1:]
				break
			}
		}
	}
	if env["K"] != "b" || env["ONLY_A"] != "x" || env["E"] != "e" {
		t.Errorf("later env files win, ENV applies: %v", env)
	}
	pc, err = resolveProcess(contract.Process{EnvFiles: []string{a}, Env: map[string]string{"K": "env"}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, kv := range pc.env {
		if kv == "K=env" {
			found = true
		}
	}
	if !found {
		t.Errorf("ENV must win over ENV_FILE: %v", pc.env)
	}
	if _, err := resolveProcess(contract.Process{Dir: filepath.Join(dir, "missing")}); err == nil {
		t.Errorf("a missing workdir should be an error")
	}
	if _, err := resolveProcess(contract.Process{User: "no-such-user-xyz"}); err == nil {
		t.Errorf("an unknown user should be an error")
	}
}

func TestAliveRejectsOtherProcesses(t *testing.T) {
	if Alive(os.Getpid(), "/nonexistent/unit.json") {
		t.Errorf("the test process is not a supervisor")
	}
	if Alive(0, "x") || Alive(-1, "x") {
		t.Errorf("non-positive pids are never alive")
	}
}

func TestLimitsFrom(t *testing.T) {
	two := 2.0
	tiny := 0.001
	cases := []struct {
		r    *spec.Resources
		want limits
		ok   bool
	}{
		{nil, limits{}, false},
		{&spec.Resources{LimitNofile: 10}, limits{}, false}, // rlimits are not cgroup limits
		{&spec.Resources{Memory: "512M", CPUs: &two, TasksMax: 9, IOWeight: 300}, limits{memory: 512 << 20, cpuQuota: 200000, pids: 9, ioWeight: 300}, true},
		{&spec.Resources{CPUQuota: "150%"}, limits{cpuQuota: 150000}, true},
		{&spec.Resources{CPUs: &tiny}, limits{cpuQuota: 1000}, true},
	}
	for _, c := range cases {
		got, ok, err := limitsFrom(c.r)
		if err != nil || ok != c.ok || got != c.want {
			t.Errorf("limitsFrom(%+v) = %+v, %v, %v; want %+v, %v", c.r, got, ok, err, c.want, c.ok)
		}
	}
	if _, _, err := limitsFrom(&spec.Resources{Memory: "lots"}); err == nil {
		t.Errorf("a bad MEMORY should be an error")
	}
}
