package procfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestFlag(t *testing.T) {
	argv := []string{"containerd-shim-runc-v2", "-namespace", "ns1", "-id=web", "--address", "unix:///tmp/x/c.sock"}
	if got := Flag(argv, "namespace"); got != "ns1" {
		t.Errorf("namespace = %q", got)
	}
	if got := Flag(argv, "id"); got != "web" {
		t.Errorf("id = %q", got)
	}
	if got := TrimUnix(Flag(argv, "address")); got != "/tmp/x/c.sock" {
		t.Errorf("address = %q", got)
	}
	if got := Flag(argv, "missing"); got != "" {
		t.Errorf("missing = %q", got)
	}
	s := Shims([]Proc{{Pid: 7, Argv: argv}, {Pid: 8, Argv: []string{"/bin/sh"}}})
	if len(s) != 1 || s[0].ID != "web" || s[0].Address != "/tmp/x/c.sock" {
		t.Errorf("Shims = %+v", s)
	}
}

func TestUnescape(t *testing.T) {
	if got := unescape(`/tmp/a\040b\134c`); got != `/tmp/a b\c` {
		t.Errorf("unescape = %q", got)
	}
}

// TestProcessesAndDescendants runs a real child tree: sh -> sleep.
func TestProcessesAndDescendants(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 600 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	var kids []int
	var procs []Proc
	// sh forks sleep asynchronously.
	eventually(t, 10*time.Second, "sh has a child", func() bool {
		var err error
		if procs, err = Processes(); err != nil {
			t.Fatal(err)
		}
		kids = Descendants(procs, cmd.Process.Pid)
		return len(kids) > 0
	})
	if len(kids) != 1 {
		t.Fatalf("descendants of sh: %v", kids)
	}
	KillTree(procs, cmd.Process.Pid)
	<-done
	eventually(t, 10*time.Second, "sleep killed", func() bool { return !Alive(kids[0]) })
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		<-tick.C
	}
}

// TestUnmountUnder mounts a real stacked tmpfs pair and removes both.
func TestUnmountUnder(t *testing.T) {
	dir := t.TempDir()
	inner := filepath.Join(dir, "a", "b")
	if err := unix.Mount("tmpfs", filepath.Join(dir), "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := os.MkdirAll(inner, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", inner, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	ms, err := MountsUnder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Point != inner {
		t.Fatalf("MountsUnder = %+v, want %s first", ms, inner)
	}
	if err := UnmountUnder(dir); err != nil {
		t.Fatal(err)
	}
	ms, _ = MountsUnder(dir)
	if len(ms) != 0 {
		t.Fatalf("left mounted: %+v", ms)
	}
}
