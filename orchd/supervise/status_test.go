package supervise

import (
	"log/slog"
	"os"
	"syscall"
	"testing"

	"github.com/orchd/orchd/orchd/contract"
)

// inode of path: a status write replaces the file, so a new inode means it
// was written. The file stays open until the test ends, so its inode number
// cannot be reused by a later write.
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// TestStatusWrites: the start path writes the status file only when it
// changed, and changes made together are one write.
func TestStatusWrites(t *testing.T) {
	l := contract.Layout{StateDir: t.TempDir()}
	s := &supervisor{unit: contract.Unit{Label: "ns.web"}, layout: l, log: slog.Default(),
		st: contract.Status{Label: "ns.web", State: contract.StateStarting}}
	path := l.StatusFile("ns.web")
	if err := s.write(); err != nil {
		t.Fatal(err)
	}
	first := inode(t, path)
	s.setState(contract.StateStarting, "")
	if inode(t, path) != first {
		t.Errorf("an unchanged status was written again")
	}
	s.mutate(func(st *contract.Status) { st.Pid = 42 })
	s.mutate(func(st *contract.Status) { st.State = contract.StateRunning })
	if inode(t, path) != first {
		t.Errorf("mutate wrote the status; only flush may")
	}
	s.flush()
	st, err := ReadStatus(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != contract.StateRunning || st.Pid != 42 || st.Since.IsZero() {
		t.Errorf("after flush: state %q pid %d since %v; want running, 42, set", st.State, st.Pid, st.Since)
	}
	second := inode(t, path)
	if second == first {
		t.Errorf("flush did not write the changed status")
	}
	s.setState(contract.StateExited, "exited with code 0")
	if st, _ := ReadStatus(path); st.State != contract.StateExited || inode(t, path) == second {
		t.Errorf("final state: %q, want exited, written", st.State)
	}
}
