package supervise

import (
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
	"github.com/orchd/orchd/orchd/logline"
	"github.com/orchd/orchd/orchd/procfs"
)

// leafHelper acts as a leaf: it prints (raw: a leaf stamps its own records)
// which streams it was told to stamp, its parent and its PID namespace,
// sends READY=1, and on SIGTERM says so and exits.
func leafHelper() int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ns, _ := os.Readlink("/proc/self/ns/pid")
	fmt.Printf("records=%s ppid=%d pidns=%s\n", os.Getenv(logline.RecordsEnv), os.Getppid(), ns)
	if ok, err := daemon.SdNotify(false, "READY=1"); !ok || err != nil {
		fmt.Fprintln(os.Stderr, "notify:", ok, err)
		return 3
	}
	<-sigs
	fmt.Println("leaf got SIGTERM")
	return 0
}

func leafUnit(t *testing.T) (unit, logFile string) {
	unit = unitFor(t, "leaf", func(u *contract.Unit) { u.Exec.Leaf = true })
	return unit, contract.Layout{StateDir: filepath.Dir(unit)}.LogFile("t.svc")
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func TestLeafRunsWithoutAnInit(t *testing.T) {
	unit, logFile := leafUnit(t)
	_, stop := runAsync(t, unit)
	eventually(t, 10*time.Second, "running after the leaf's READY=1", func() bool {
		return statusOf(t, unit).State == contract.StateRunning
	})
	st := statusOf(t, unit)
	self, _ := os.Readlink("/proc/self/ns/pid")
	// The supervisor (this process) is the leaf's parent, the leaf shares its
	// PID namespace, and what it wrote reached the log unstamped.
	want := fmt.Sprintf("records=stdout,stderr ppid=%d pidns=%s\n", os.Getpid(), self)
	eventually(t, 5*time.Second, "the leaf's line in the log", func() bool { return readFile(logFile) == want })
	if st.LeafPid <= 0 || st.Pid != st.LeafPid {
		t.Errorf("pid %d leaf_pid %d: want both the leaf's", st.Pid, st.LeafPid)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if got := readFile(logFile); !strings.HasSuffix(got, "leaf got SIGTERM\n") {
		t.Errorf("log after stop: %q; want the leaf to have been sent SIGTERM", got)
	}
	if st := statusOf(t, unit); st.State != contract.StateStopped {
		t.Errorf("state %s, want stopped", st.State)
	}
}

func TestLeafOutlivesAKilledSupervisorUntilSIGTERMHandled(t *testing.T) {
	unit, logFile := leafUnit(t)
	sup := exec.Command(os.Args[0])
	sup.Env = append(os.Environ(), helperEnv+"=supervisor "+unit)
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.Process.Kill(); sup.Wait() })
	eventually(t, 10*time.Second, "running after the leaf's READY=1", func() bool {
		return statusOf(t, unit).State == contract.StateRunning
	})
	leaf := statusOf(t, unit).LeafPid
	if args := procfs.Argv(leaf); len(args) == 0 || args[0] != os.Args[0] {
		t.Fatalf("leaf pid %d runs %v, want the start command %s", leaf, args, os.Args[0])
	}
	if ppid := procfs.Parent(leaf); ppid != sup.Process.Pid {
		t.Fatalf("leaf %d has parent %d, want its supervisor %d (no init between)", leaf, ppid, sup.Process.Pid)
	}
	sup.Process.Kill()
	sup.Wait()
	// PDEATHSIG: the leaf is told to stop, and what it writes while stopping
	// still reaches the log (it holds the file).
	if err := procfs.WaitGone(t.Context(), []int{leaf}, 10*time.Second); err != nil {
		syscall.Kill(leaf, syscall.SIGKILL)
		t.Fatalf("the leaf outlived its SIGKILLed supervisor: %v", err)
	}
	if got := readFile(logFile); !strings.HasSuffix(got, "leaf got SIGTERM\n") {
		t.Errorf("log: %q; want the leaf's SIGTERM line", got)
	}
}
