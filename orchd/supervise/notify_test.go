package supervise

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

// helperEnv makes the test binary act as a start command that speaks
// sd_notify: "ready-after DURATION" sleeps, sends READY=1 with its own pid
// as MAINPID, then sleeps until killed; "silent" never sends anything.
const helperEnv = "ORCHD_SUPERVISE_TEST_HELPER"

// fakeMainPid is the MAINPID ready-after sends.
const fakeMainPid = 424242

// TestMain lets the test binary serve as the supervisor's init (the spawner
// re-executes /proc/self/exe as `supervise --init`) and as a start command.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "supervise" && os.Args[2] == initFlag {
		os.Exit(InitMain())
	}
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helper(mode))
	}
	os.Exit(m.Run())
}

func helper(mode string) int {
	verb, arg, _ := strings.Cut(mode, " ")
	switch verb {
	case "ready-after":
		d, _ := time.ParseDuration(arg)
		time.Sleep(d)
		// A leaf names a process other than itself (its task); any pid will do.
		if ok, err := daemon.SdNotify(false, fmt.Sprintf("STATUS=up\nREADY=1\nMAINPID=%d", fakeMainPid)); !ok || err != nil {
			fmt.Fprintln(os.Stderr, "notify:", ok, err)
			return 3
		}
		select {}
	case "send":
		if ok, err := daemon.SdNotify(false, arg); !ok || err != nil {
			fmt.Fprintln(os.Stderr, "notify:", ok, err)
			return 3
		}
		return 0
	case "silent":
		select {}
	case "leaf":
		return leafHelper()
	case "supervisor":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := Run(ctx, arg); err != nil {
			fmt.Fprintln(os.Stderr, "supervisor:", err)
			return 1
		}
		return 0
	}
	return 2
}

func TestNotifyReceiverGetsFieldsAndSenderPid(t *testing.T) {
	dir := t.TempDir()
	path := contract.Layout{StateDir: dir}.NotifySocket("ns.svc")
	ns, err := listenNotify(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), want)
		}
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=send READY=1\nMAINPID=4242\nSTATUS=all good\nX_ORCHD_HEALTH=healthy", NotifySocketEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sender: %v: %s", err, out)
	}
	select {
	case n := <-ns.C:
		if n.pid != cmd.Process.Pid {
			t.Errorf("sender pid %d, want %d", n.pid, cmd.Process.Pid)
		}
		if !n.ready() || n.mainPid() != 4242 || n.fields["STATUS"] != "all good" || n.fields[HealthKey] != "healthy" {
			t.Errorf("fields %v", n.fields)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notice received")
	}
}

func TestNotifySocketPathFitsAnAddress(t *testing.T) {
	long := "/" + strings.Repeat("d", 60)
	p := contract.Layout{StateDir: long}.NotifySocket("namespace." + strings.Repeat("s", 60))
	if len(p) > 107 || !strings.HasPrefix(p, long) {
		t.Errorf("socket path %q (%d bytes)", p, len(p))
	}
}

// unitFor writes a unit running the test binary in helper mode.
func unitFor(t *testing.T, mode string, edit func(u *contract.Unit)) string {
	t.Helper()
	dir := t.TempDir()
	u := contract.Unit{
		Version: contract.Version, Label: "t.svc", Service: "svc", Namespace: "t", StateDir: dir,
		Exec:     contract.Exec{Start: []string{os.Args[0]}, Notify: true},
		Process:  contract.Process{Env: map[string]string{helperEnv: mode}},
		Restart:  spec.Restart{Policy: spec.RestartNo},
		Timeouts: spec.Timeouts{Start: "5s", Stop: "1s"},
	}
	if edit != nil {
		edit(&u)
	}
	b, err := json.MarshalIndent(u, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "unit.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func statusOf(t *testing.T, unitPath string) contract.Status {
	st, _ := ReadStatus(contract.Layout{StateDir: filepath.Dir(unitPath)}.StatusFile("t.svc"))
	return st
}

// runAsync runs a supervisor; the returned func stops it and returns its error.
func runAsync(t *testing.T, unitPath string) (done <-chan error, stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- Run(ctx, unitPath) }()
	t.Cleanup(cancel)
	return ch, func() error {
		cancel()
		select {
		case err := <-ch:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("supervisor did not stop")
			return nil
		}
	}
}

func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartingUntilReadyThenRunningWithMainPid(t *testing.T) {
	unit := unitFor(t, "ready-after 1500ms", nil)
	_, stop := runAsync(t, unit)
	eventually(t, 5*time.Second, "state starting with a leaf pid", func() bool {
		st := statusOf(t, unit)
		return st.State == contract.StateStarting && st.LeafPid > 0
	})
	if st := statusOf(t, unit); st.Healthy {
		t.Errorf("healthy before READY: %+v", st)
	}
	eventually(t, 5*time.Second, "state running after READY=1", func() bool {
		return statusOf(t, unit).State == contract.StateRunning
	})
	st := statusOf(t, unit)
	if st.Pid != fakeMainPid || st.LeafPid == fakeMainPid || st.Message != "up" {
		t.Errorf("pid %d leaf_pid %d message %q; want pid = MAINPID %d, leaf_pid the start command's, STATUS up", st.Pid, st.LeafPid, st.Message, fakeMainPid)
	}
	eventually(t, 2*time.Second, "healthy (ready for dependents)", func() bool { return statusOf(t, unit).Healthy })
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}

func TestTimeoutStartStopsAServiceNeverReady(t *testing.T) {
	unit := unitFor(t, "silent", func(u *contract.Unit) { u.Timeouts.Start = "1s" })
	done, _ := runAsync(t, unit)
	start := time.Now()
	select {
	case err := <-done:
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "TIMEOUT_START 1s") {
			t.Fatalf("error %v; want one naming TIMEOUT_START 1s", err)
		}
		// TIMEOUT_START + TIMEOUT_STOP + margin.
		if took < time.Second || took > 5*time.Second {
			t.Errorf("failed after %s; want within 1s..5s", took)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a service never READY was not stopped")
	}
	if st := statusOf(t, unit); st.State != contract.StateFailed || !strings.Contains(st.Message, "TIMEOUT_START 1s") {
		t.Errorf("status %+v", st)
	}
}

func TestTimeoutStartCountsAsFailedStartForRestart(t *testing.T) {
	unit := unitFor(t, "silent", func(u *contract.Unit) {
		u.Timeouts.Start = "1s"
		u.Restart = spec.Restart{Policy: spec.RestartOnFailure, Delay: "1s", StartLimitBurst: 1, StartLimitInterval: "60s"}
	})
	done, _ := runAsync(t, unit)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "start limit") || !strings.Contains(err.Error(), "TIMEOUT_START 1s") {
			t.Fatalf("error %v; want the start limit, naming TIMEOUT_START 1s", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("not given up")
	}
	if st := statusOf(t, unit); st.Restarts != 1 {
		t.Errorf("restarts %d, want 1", st.Restarts)
	}
}

func TestTimeoutStartBoundsAOneshot(t *testing.T) {
	unit := unitFor(t, "", func(u *contract.Unit) {
		u.Exec = contract.Exec{Start: []string{"sleep", "30"}}
		u.Oneshot = true
		u.Timeouts.Start = "1s"
	})
	done, _ := runAsync(t, unit)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "oneshot still running after TIMEOUT_START 1s") {
			t.Fatalf("error %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a oneshot running past TIMEOUT_START was not stopped")
	}
	if _, err := os.Stat(contract.Layout{StateDir: filepath.Dir(unit)}.ReadyFile("t.svc")); err == nil {
		t.Error("a timed-out oneshot wrote the ready marker")
	}
}

func TestTimeoutStartWaitsForHealthcheck(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "healthy")
	unit := unitFor(t, "", func(u *contract.Unit) {
		u.Exec = contract.Exec{Start: []string{"sleep", "30"}}
		u.Healthcheck = "test -e " + flag
		u.Timeouts.Start = "3s"
	})
	done, stop := runAsync(t, unit)
	eventually(t, 5*time.Second, "health starting while the check fails", func() bool {
		st := statusOf(t, unit)
		return st.State == contract.StateRunning && st.Health == contract.HealthUnhealthy && !st.Healthy
	})
	ready := contract.Layout{StateDir: filepath.Dir(unit)}.ReadyFile("t.svc")
	if _, err := os.Stat(ready); err == nil {
		t.Fatal("ready marker written before the healthcheck passed")
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Second, "healthy once the check passes", func() bool {
		st := statusOf(t, unit)
		return st.Health == contract.HealthHealthy && st.Healthy
	})
	// Past TIMEOUT_START: a ready service is left alone.
	select {
	case err := <-done:
		t.Fatalf("supervisor ended: %v", err)
	case <-time.After(3 * time.Second):
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
}
