package cycles

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/spec"
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
	if strings.Contains(out, "TIMEOUT_START") {
		t.Fatalf("no TIMEOUT_START unless asked:\n%s", out)
	}
	out = orchfile("oci-layout:///x", "sleep forever", 3, 270*time.Second)
	if strings.Count(out, "\nTIMEOUT_START 4m30s\n") != 3 {
		t.Fatalf("every service gets TIMEOUT_START 4m30s:\n%s", out)
	}
	s, err := spec.Parse([]spec.Source{{Name: "Orchfile", Data: []byte(out)}}, spec.Options{})
	if err != nil {
		t.Fatalf("the Orchfile does not parse: %v", err)
	}
	for _, svc := range s.Services {
		if svc.Timeouts.Start != spec.Duration("4m30s") {
			t.Fatalf("%s: TIMEOUT_START %v", svc.Name, svc.Timeouts.Start)
		}
	}
}

// killRandom picks only a supervisor or leaf of the state dir, never a
// supervisor's init or another state dir's process, and SIGKILLs it.
func TestKillRandomPicksOnlyOrchdProcessesOfTheStateDir(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	other := filepath.Join(t.TempDir(), "other")
	script := filepath.Join(t.TempDir(), "loop.sh")
	if err := os.WriteFile(script, []byte("while :; do sleep 0.1; done\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command("/bin/sh", append([]string{script}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	init := start("supervise", "--init", "--spec", state+"/run/ns.a.unit.json")
	foreign := start("supervise", "--spec", other+"/run/ns.a.unit.json")
	sup := start("supervise", "--spec", state+"/run/ns.a.unit.json")
	o := Options{CLI: CLI{StateDir: state}, KillRandom: rand.New(rand.NewPCG(1, 2))}
	got := killRandom(o)
	if want := fmt.Sprintf("supervisor %d", sup.Process.Pid); got != want {
		t.Fatalf("killRandom = %q, want %q", got, want)
	}
	if err := sup.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the supervisor was not SIGKILLed: %v", err)
	}
	for _, c := range []*exec.Cmd{init, foreign} {
		if err := c.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("%v was killed too", c.Args)
		}
	}
	if got := killRandom(Options{CLI: CLI{StateDir: t.TempDir()}, KillRandom: rand.New(rand.NewPCG(1, 2))}); !strings.HasPrefix(got, "nothing") {
		t.Errorf("an empty state dir: %q", got)
	}
}
