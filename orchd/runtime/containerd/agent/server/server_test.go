package server_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/procfs"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent/server"
)

// serveEnv makes the test binary the agent its clients start (they exec
// "<binary> containerd-agent --state-dir D").
const serveEnv = "ORCHD_AGENT_TEST_SERVE"

// exitDelayEnv makes that agent wait this long between its last goodbye
// and its exit.
const exitDelayEnv = "ORCHD_AGENT_TEST_EXIT_DELAY"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) != "" && len(os.Args) > 1 && os.Args[1] == agent.Command {
		fs := flag.NewFlagSet(agent.Command, flag.ExitOnError)
		dir := fs.String("state-dir", "", "")
		fs.Parse(os.Args[2:])
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := server.Serve(ctx, *dir, os.NewFile(3, "ready"), slog.Default()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if d, err := time.ParseDuration(os.Getenv(exitDelayEnv)); err == nil {
			time.Sleep(d) // an agent slow to exit (TestLastLeafReturnsOnlyOnceTheAgentIsGone)
		}
		os.Exit(0)
	}
	if dir := os.Getenv(otherUserEnv); dir != "" {
		otherUserClient(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func stateDir(t *testing.T) string {
	t.Helper()
	t.Setenv(serveEnv, "1")
	dir := t.TempDir()
	if err := (contract.Layout{StateDir: dir}).Create(); err != nil {
		t.Fatal(err)
	}
	// A test that failed must not leave its agent running.
	t.Cleanup(func() {
		for _, pid := range agentsOf(t, dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return dir
}

// agentsOf are the live agent processes serving dir.
func agentsOf(t *testing.T, dir string) []int {
	t.Helper()
	procs, err := procfs.Processes()
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, p := range procs {
		if p.Live() && slices.Contains(p.Argv, agent.Command) && slices.Contains(p.Argv, dir) {
			out = append(out, p.Pid)
		}
	}
	return out
}

// waitNoAgent polls (bounded) until no agent serves dir.
func waitNoAgent(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(agentsOf(t, dir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("agent %v still running 10s after its last client left", agentsOf(t, dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestConcurrentClientsShareOneAgentWhichExitsAfterTheLast(t *testing.T) {
	dir := stateDir(t)
	var releases []func()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := agent.Hold(dir, os.Args[0], "")
			mu.Lock()
			releases = append(releases, r)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Hold connects in the background; a leaf connects in the foreground
	// and, leaving, is told whether the agent stays.
	badLeaf(t, dir)
	if got := agentsOf(t, dir); len(got) != 1 {
		t.Fatalf("agents after 8 concurrent holds and a leaf: %v, want exactly one", got)
	}
	first := agentsOf(t, dir)[0]
	for _, r := range releases[:7] {
		r()
	}
	badLeaf(t, dir)
	if got := agentsOf(t, dir); len(got) != 1 || got[0] != first {
		t.Fatalf("agents after a leaf left with one hold left: %v, want still %d", got, first)
	}
	releases[7]()
	waitNoAgent(t, dir)
}

func TestAgentWhoseStateDirIsGoneExitsAfterItsLastClient(t *testing.T) {
	dir := stateDir(t)
	release := agent.Hold(dir, os.Args[0], "")
	deadline := time.Now().Add(10 * time.Second)
	for len(agentsOf(t, dir)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if len(agentsOf(t, dir)) != 1 {
		t.Fatalf("agents after a hold: %v, want one", agentsOf(t, dir))
	}
	// Its lock file goes with the dir: the agent cannot take it to exit.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	release()
	waitNoAgent(t, dir)
}

// badLeaf runs a leaf whose run spec is missing: the agent answers with an
// error naming it, and the leaf returns after its goodbye.
func badLeaf(t *testing.T, dir string) {
	t.Helper()
	out, err := os.OpenFile(filepath.Join(dir, "out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	l := &agent.Leaf{StateDir: dir, Orchd: os.Args[0], Stdout: out, Stderr: out,
		Request: agent.Request{SpecFile: filepath.Join(dir, "missing.crun.json")}}
	_, err = l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "missing.crun.json") {
		t.Fatalf("Run with a missing run spec: %v, want the agent's error naming the file", err)
	}
}

func TestLastLeafReturnsOnlyOnceTheAgentIsGone(t *testing.T) {
	dir := stateDir(t)
	// This agent takes a while to exit after its last goodbye.
	t.Setenv(exitDelayEnv, "300ms")
	badLeaf(t, dir)
	// No polling: the last leaf waits for the agent's exit itself.
	if got := agentsOf(t, dir); len(got) > 0 {
		t.Fatalf("agent %v still running after its last leaf returned", got)
	}
}

func TestDrainStartsNoAgent(t *testing.T) {
	dir := stateDir(t)
	if err := agent.Drain(context.Background(), dir, "ns", nil); err != nil {
		t.Fatalf("drain without an agent: %v", err)
	}
	if _, err := os.Stat(agent.LogFile(dir)); err == nil {
		t.Fatalf("drain started an agent (its log %s exists)", agent.LogFile(dir))
	}
}

// otherUserEnv makes the test binary a client that dials the agent of the
// state dir it names and reports what it got.
const otherUserEnv = "ORCHD_AGENT_TEST_OTHER_USER"

func TestAPeerOfAnotherUserIsRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	dir := stateDir(t)
	release := agent.Hold(dir, os.Args[0], "")
	defer func() { release(); waitNoAgent(t, dir) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(agentsOf(t, dir)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The test binary, where another user may run it.
	bin, err := os.MkdirTemp("", "agent-peer-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(bin)
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(bin, "client")
	if err := os.WriteFile(exe, self, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(bin, 0o755)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), otherUserEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as uid 65534: %v\n%s", err, b)
	}
	if got := strings.TrimSpace(string(b)); got != "refused" {
		t.Fatalf("client as uid 65534 got %q, want the agent to refuse it", got)
	}
}

// otherUserClient dials dir's agent and asks to hold it: "refused" when the
// agent closes the connection without accepting.
func otherUserClient(dir string) {
	c, err := net.Dial("unix", agent.Address(dir))
	if err != nil {
		fmt.Println("dial:", err)
		return
	}
	defer c.Close()
	fmt.Fprintln(c, `{"hold":true}`)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	switch {
	case line == "" && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)):
		fmt.Println("refused")
	default:
		fmt.Printf("answered %q (%v)\n", line, err)
	}
}
