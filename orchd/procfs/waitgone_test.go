package procfs

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWaitGone(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	err := WaitGone(context.Background(), []int{pid}, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(pid)) {
		t.Fatalf("a live process: WaitGone = %v, want an error naming %d", err, pid)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Not reaped yet: a zombie counts as gone.
	if err := WaitGone(context.Background(), []int{pid}, 5*time.Second); err != nil {
		t.Fatalf("a killed process: %v", err)
	}
	_ = cmd.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitGone(ctx, []int{1}, time.Minute); err == nil {
		t.Fatal("a cancelled context did not end the wait")
	}
}
