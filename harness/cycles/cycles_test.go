package cycles

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchd/orchd/orchd/platform"
)

// fakeOrchd writes a script that prints its argv and selected env, and
// exits with the code in $FAKE_EXIT.
func fakeOrchd(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "orchd")
	script := "#!/bin/sh\necho \"args=$*\"\necho \"home=$HOME\"\necho \"sock=$ORCHD_CONTAINERD_SOCKET\"\necho \"orchns=${ORCH_NAMESPACE:-unset}\"\necho err >&2\nexit ${FAKE_EXIT:-0}\n"
	if err := os.WriteFile(p, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func testCLI(t *testing.T) CLI {
	dir := t.TempDir()
	return CLI{
		Orchd:      fakeOrchd(t),
		Address:    "/tmp/x.sock",
		Namespace:  "ns1",
		StateDir:   filepath.Join(dir, "state"),
		ProjectDir: filepath.Join(dir, "project"),
	}
}

func TestCLIRunPassesFlagsAndIsolatesEnv(t *testing.T) {
	t.Setenv("ORCH_NAMESPACE", "leaked")
	c := testCLI(t)
	if err := c.WriteOrchfile("SERVICE a\nRUN true\n"); err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(context.Background(), "logs", "svc")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"args=logs svc --namespace ns1 --state-dir " + c.StateDir + " --project-dir " + c.ProjectDir + " --runtime containerd --platform orchdi",
		"home=" + filepath.Join(filepath.Dir(c.StateDir), "home"),
		"sock=/tmp/x.sock",
		"orchns=unset",
	} {
		if !strings.Contains(res.Stdout, want+"\n") {
			t.Errorf("stdout lacks %q:\n%s", want, res.Stdout)
		}
	}
	if res.Stderr != "err\n" || res.ExitCode != 0 || res.Err() != nil {
		t.Errorf("stderr %q exit %d err %v", res.Stderr, res.ExitCode, res.Err())
	}
}

func TestCLIRunReportsExitCode(t *testing.T) {
	c := testCLI(t)
	c.Env = []string{"FAKE_EXIT=3"}
	res, err := c.Run(context.Background(), "grow")
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || res.Err() == nil || !strings.Contains(res.Err().Error(), "exit 3") {
		t.Fatalf("exit %d, err %v", res.ExitCode, res.Err())
	}
}

func TestRunRefusesWithoutInspector(t *testing.T) {
	c := testCLI(t)
	if _, err := Run(context.Background(), Options{CLI: c, Image: "img"}); err == nil || !strings.Contains(err.Error(), "inspector") {
		t.Fatalf("err = %v, want a missing inspector error", err)
	}
	insp := func(context.Context) (int, string, error) { return 0, "", nil }
	if _, err := Run(context.Background(), Options{CLI: c, Inspect: insp}); err == nil || !strings.Contains(err.Error(), "image") {
		t.Fatalf("err = %v, want a missing image error", err)
	}
}

func TestCountRunningNeedsARunningTask(t *testing.T) {
	rows := []platform.ServiceStatus{
		{Name: "a", State: "running", TaskStatus: "RUNNING"},
		{Name: "b", State: "running", TaskStatus: "running"},
		{Name: "c", State: "running"},
		{Name: "d", State: "starting", TaskStatus: "running"},
	}
	if n := countRunning(rows); n != 2 {
		t.Fatalf("countRunning = %d, want 2", n)
	}
}

func TestResultOK(t *testing.T) {
	ok := Cycle{N: 1, Services: 2, Running: 2}
	if r := (&Result{}); r.OK() {
		t.Error("an empty result is not OK")
	}
	if r := (&Result{Cycles: []Cycle{ok}}); !r.OK() {
		t.Error("all running, no leaks: OK")
	}
	leaked := ok
	leaked.Leaks = 1
	if r := (&Result{Cycles: []Cycle{ok, leaked}}); r.OK() {
		t.Error("a leak is not OK")
	}
	short := ok
	short.Running = 1
	if short.OK() {
		t.Error("not all running is not OK")
	}
}

func TestOrchfileServices(t *testing.T) {
	out := Orchfile("oci-layout:///x", "sleep forever", 3)
	if strings.Count(out, "\nSERVICE svc-") != 3 || !strings.Contains(out, "SERVICE svc-02\nFROM oci-layout:///x\nCMD sleep forever\n") {
		t.Fatalf("Orchfile:\n%s", out)
	}
}
