package systemd

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary play a leaf: with ORCHD_TEST_LEAF set it
// speaks sd_notify the way the containerd-run leaf does.
func TestMain(m *testing.M) {
	if dir := os.Getenv("ORCHD_TEST_LEAF"); dir != "" {
		os.Exit(leaf(dir))
	}
	os.Exit(m.Run())
}

func notifyLeaf(msg string) {
	c, err := net.Dial("unixgram", os.Getenv("NOTIFY_SOCKET"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		panic(err)
	}
}

// awaitFile polls for a file the test creates (the leaf has no other channel).
func awaitFile(p string) {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(p); err == nil {
			return
		}
	}
	panic("timed out waiting for " + p)
}

func leaf(dir string) int {
	notifyLeaf("READY=1\nMAINPID=1")
	os.WriteFile(filepath.Join(dir, "leaf-ready"), nil, 0o600)
	awaitFile(filepath.Join(dir, "healthy"))
	notifyLeaf("X_ORCHD_HEALTH=healthy")
	awaitFile(filepath.Join(dir, "sick"))
	notifyLeaf("X_ORCHD_HEALTH=unhealthy")
	awaitFile(filepath.Join(dir, "exit"))
	return 5
}

func TestRelayGatesReadyOnLeafHealthAndKeepsExitCode(t *testing.T) {
	dir := t.TempDir()
	sd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "systemd"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "systemd"))
	t.Setenv("ORCHD_TEST_LEAF", dir)
	type result struct {
		code int
		err  error
	}
	res := make(chan result, 1)
	go func() {
		code, err := Relay(context.Background(), []string{os.Args[0]}, RelayOptions{Healthcheck: "probe --ok", LeafHealth: true, Readiness: time.Minute})
		res <- result{code, err}
	}()
	readNotice := func(within time.Duration) (string, error) {
		sd.SetReadDeadline(time.Now().Add(within))
		buf := make([]byte, 1024)
		n, err := sd.Read(buf)
		return string(buf[:n]), err
	}
	awaitFile(filepath.Join(dir, "leaf-ready"))
	// The leaf is ready but not healthy: systemd hears nothing.
	if msg, err := readNotice(500 * time.Millisecond); err == nil {
		t.Fatalf("systemd was told %q before the HEALTHCHECK passed", msg)
	}
	os.WriteFile(filepath.Join(dir, "healthy"), nil, 0o600)
	msg, err := readNotice(10 * time.Second)
	if err != nil || msg != "STATUS=health: healthy\nREADY=1" {
		t.Fatalf("after health: %q, %v; want STATUS=health: healthy and READY=1 (and no MAINPID)", msg, err)
	}
	if strings.Contains(msg, "MAINPID") {
		t.Errorf("the relay passed the leaf's MAINPID on: %q", msg)
	}
	// Later verdicts reach systemd as STATUS= (survey's HEALTH), never a
	// second READY=1.
	os.WriteFile(filepath.Join(dir, "sick"), nil, 0o600)
	if msg, err := readNotice(10 * time.Second); err != nil || msg != "STATUS=health: unhealthy" {
		t.Fatalf("after the leaf turned unhealthy: %q, %v; want STATUS=health: unhealthy", msg, err)
	}
	os.WriteFile(filepath.Join(dir, "exit"), nil, 0o600)
	select {
	case r := <-res:
		if r.err != nil || r.code != 5 {
			t.Errorf("relay returned %d, %v; want the leaf's 5", r.code, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("relay did not return after the leaf exited")
	}
}
