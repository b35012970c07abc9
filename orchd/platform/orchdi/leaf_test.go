package orchdi_test

import (
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/procfs"
	"github.com/orchd/orchd/orchd/spec"
)

// fakeLeafEnv makes the test binary a leaf that will not stop: it writes its
// pid to the named file and ignores SIGTERM (the PDEATHSIG a real leaf stops
// its task on), as a leaf stuck in a containerd call would.
const fakeLeafEnv = "ORCHDI_TEST_FAKE_LEAF"

func fakeLeaf(pidfile string) {
	signal.Ignore(syscall.SIGTERM)
	if err := os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		os.Exit(3)
	}
	select {}
}

// A container service's leaf runs without an init (contract.Exec.Leaf); when
// its supervisor dies, the leaf is what is left, and tend and fell must find
// it by the spec file its argv names.
func TestLeafOfADeadSupervisorIsFound(t *testing.T) {
	w := newWorld(t)
	label := w.label("leafy")
	pidfile := w.proj + "/leaf.pid"
	c := contract.Cutting{Service: svc("leafy", ""), Process: contract.Process{Dir: w.proj, Env: map[string]string{fakeLeafEnv: pidfile}}}
	c.Service.Mode = spec.ModeContainer
	c.Exec.Start = []string{os.Args[0], "containerd-run", "--spec-file", w.layout().CrunFile(label)}
	c.Exec.Leaf = true
	beds := w.plant(c)

	// started runs the beds and returns the leaf's and its supervisor's pids.
	started := func() (leaf, sup int) {
		os.Remove(pidfile)
		w.tendBeds(beds)
		leaf = pidFrom(t, pidfile)
		w.waitState("leafy", contract.StateRunning, 10*time.Second)
		st, err := readStatus(w.layout().StatusFile(label))
		if err != nil {
			t.Fatal(err)
		}
		sup = st.SupervisorPid
		if ppid := procfs.Parent(leaf); ppid != sup {
			t.Fatalf("leaf %d has parent %d, want its supervisor %d (no init between)", leaf, ppid, sup)
		}
		if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, 5*time.Second, sup)
		if !alive(leaf) {
			t.Fatalf("the fake leaf %d ended with its supervisor; it must outlast it for this test", leaf)
		}
		return leaf, sup
	}

	old, _ := started()
	// Tend must not start a second leaf beside the first: it ends it first.
	next, _ := started()
	if alive(old) {
		t.Errorf("the leaf %d of a dead supervisor still runs after tend started another (%d)", old, next)
	}
	w.fell()
	if alive(next) {
		t.Errorf("the leaf %d of a dead supervisor survived fell", next)
	}
}
