package procfs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestScanFilters starts a process whose argv carries a unique marker and
// finds exactly it by a raw-cmdline filter, with its parent and state; once
// killed and not yet reaped it is scanned as a zombie (not Live).
func TestScanFilters(t *testing.T) {
	marker := fmt.Sprintf("procfs-scan-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := exec.Command("sleep", "600")
	cmd.Args[0] = marker // argv[0]: the marker the filter looks for
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	keep := func(raw []byte) bool { return bytes.Contains(raw, []byte(marker)) }
	var procs []Proc
	eventually(t, 10*time.Second, "the marked process is scanned", func() bool {
		var err error
		if procs, err = Scan(keep); err != nil {
			t.Fatal(err)
		}
		return len(procs) == 1 && procs[0].Pid == cmd.Process.Pid
	})
	p := procs[0]
	if p.PPid != os.Getpid() || !p.Live() || len(p.Argv) != 2 || p.Argv[1] != "600" {
		t.Fatalf("scanned %+v: want parent %d and a live state", p, os.Getpid())
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the killed, unreaped process is a zombie", func() bool {
		return !Alive(cmd.Process.Pid)
	})
	if _, st := stat(cmd.Process.Pid); st != 'Z' {
		t.Fatalf("state of the unreaped process = %q, want Z", st)
	}
}
