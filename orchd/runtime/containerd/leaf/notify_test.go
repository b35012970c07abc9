package leaf

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// statusTask answers Status with each of its statuses in turn (the last one
// from then on); every other method of client.Task is unused here.
type statusTask struct {
	client.Task
	statuses []client.ProcessStatus
	asked    int
}

func (t *statusTask) Status(context.Context) (client.Status, error) {
	st := t.statuses[min(t.asked, len(t.statuses)-1)]
	t.asked++
	return client.Status{Status: st}, nil
}

func (t *statusTask) Pid() uint32 { return 4242 }

// notices listens on a NOTIFY_SOCKET for the test and returns what arrives.
func notices(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	out := make(chan string, 4)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			out <- string(buf[:n])
		}
	}()
	return out
}

func quietLeaf() *leaf { return &leaf{log: slog.New(slog.NewTextHandler(io.Discard, nil))} }

// containerd answers "unknown" when the shim misses its task state timeout
// (seen on a loaded VM with the task running): that is no reason to keep
// the service from being ready.
func TestNotifyRunningAsksAgainWhileTheStatusIsUnknown(t *testing.T) {
	got := notices(t)
	task := &statusTask{statuses: []client.ProcessStatus{client.Unknown, client.Unknown, client.Running}}
	if !quietLeaf().notifyRunning(context.Background(), task) {
		t.Fatalf("a task that turned out running after %d questions was not announced", task.asked)
	}
	select {
	case n := <-got:
		if !strings.Contains(n, "READY=1") || !strings.Contains(n, "MAINPID=4242") {
			t.Fatalf("notice %q: want READY=1 and MAINPID=4242", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no READY=1 notice")
	}
	if task.asked != 3 {
		t.Fatalf("asked %d times, want 3", task.asked)
	}
}

func TestNotifyRunningDoesNotAnnounceAStoppedTask(t *testing.T) {
	got := notices(t)
	task := &statusTask{statuses: []client.ProcessStatus{client.Unknown, client.Stopped}}
	if quietLeaf().notifyRunning(context.Background(), task) {
		t.Fatal("a stopped task was announced")
	}
	select {
	case n := <-got:
		t.Fatalf("notice %q for a stopped task", n)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestNotifyRunningEndsWithItsContext(t *testing.T) {
	notices(t)
	ctx, cancel := context.WithCancel(context.Background())
	task := &statusTask{statuses: []client.ProcessStatus{client.Unknown}}
	done := make(chan bool)
	go func() { done <- quietLeaf().notifyRunning(ctx, task) }()
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("announced after its context ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still asking after its context ended")
	}
}
