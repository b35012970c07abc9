package supervise

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/contract"
)

func TestReloadRunsInTheServiceEnvironmentWithoutRestart(t *testing.T) {
	work := t.TempDir()
	out := filepath.Join(work, "reloads")
	unit := unitFor(t, "", func(u *contract.Unit) {
		u.Exec = contract.Exec{
			Start:  []string{"sleep", "30"},
			Reload: []string{"/bin/sh", "-c", `echo "$GREETING $(pwd) $$" >> ` + out},
		}
		u.Process = contract.Process{Dir: work, Env: map[string]string{"GREETING": "hello"}}
	})
	_, stop := runAsync(t, unit)
	eventually(t, 5*time.Second, "running", func() bool { return statusOf(t, unit).State == contract.StateRunning })
	before := statusOf(t, unit)
	b, _ := os.ReadFile(unit)
	var u contract.Unit
	if err := json.Unmarshal(b, &u); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Reload(ctx, u, before.Pid); err != nil {
		t.Fatalf("reload: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	fields := strings.Fields(lines[0])
	if len(lines) != 1 || len(fields) != 3 || fields[0] != "hello" || fields[1] != work {
		t.Fatalf("reload output %q; want one line: hello %s PID", got, work)
	}
	// Inside the service's PID namespace the reload's pid is small (the
	// service's init is 1, the service 2); on the host it would not be.
	if fields[2] == "" || len(fields[2]) > 3 {
		t.Errorf("reload pid %s: not in the service's PID namespace", fields[2])
	}
	after := statusOf(t, unit)
	if after.Restarts != 0 || after.Pid != before.Pid || after.State != contract.StateRunning {
		t.Errorf("after reload: %+v; want the same running process, 0 restarts", after)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func TestReloadWithoutReloadCommandFails(t *testing.T) {
	err := Reload(context.Background(), contract.Unit{Service: "web", Exec: contract.Exec{Start: []string{"true"}}}, 1)
	if err == nil || !strings.Contains(err.Error(), "service web has no RELOAD command") {
		t.Fatalf("error %v", err)
	}
}
