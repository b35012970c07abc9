package supervise

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/logline"
	"github.com/orchd/orchd/orchd/procfs"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
)

// fakeAgent serves one client on the state dir's agent address as the
// containerd agent would: it writes a line to the stdout it was handed,
// reports READY=1 with a MAINPID, and, when answerStop, ends the service on
// a stop request. It reports what it saw on the returned channel.
type fakeAgentSeen struct {
	req      agent.Request
	files    int
	stopped  bool // a stop request arrived
	closedAt time.Time
}

func fakeAgent(t *testing.T, stateDir string, answerStop bool) <-chan fakeAgentSeen {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(agent.LockFile(stateDir)), 0o700); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: agent.Address(stateDir), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan fakeAgentSeen, 1)
	go func() {
		var seen fakeAgentSeen
		defer func() { out <- seen }()
		c, err := ln.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(2*4))
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\n")
		if json.Unmarshal([]byte(line), &seen.req) != nil {
			return
		}
		var fds []int
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
			fds, _ = unix.ParseUnixRights(&msgs[0])
		}
		seen.files = len(fds)
		if len(fds) == 2 {
			stdout := os.NewFile(uintptr(fds[0]), "stdout")
			fmt.Fprintln(stdout, "hello from the agent")
			stdout.Close()
			unix.Close(fds[1])
		}
		send := func(m agent.Message) {
			b, _ := json.Marshal(m)
			c.Write(append(b, '\n'))
		}
		send(agent.Message{Accepted: true})
		if seen.req.Notify { // as the agent: notices only for a client that takes them
			send(agent.Message{Notify: "READY=1\nMAINPID=4242\nSTATUS=up"})
		}
		dec := json.NewDecoder(bufio.NewReader(c))
		for {
			var m agent.Message
			if err := dec.Decode(&m); err != nil {
				seen.closedAt = time.Now()
				return
			}
			if m.Stop && !seen.stopped {
				seen.stopped = true
				if answerStop {
					// A notice while stopping (a health verdict can come
					// late) must not hold up the exit behind it.
					send(agent.Message{Notify: "STATUS=stopping"})
					code := 0
					send(agent.Message{Exit: &code})
				}
			}
		}
	}()
	return out
}

func agentUnit(t *testing.T) string {
	return unitFor(t, "unused", func(u *contract.Unit) {
		u.Exec.Start = []string{"/nonexistent/orchd", "containerd-run", "--spec-file", "/nonexistent/t.svc.crun.json"}
		u.Exec.Leaf, u.Exec.Agent = true, true
	})
}

// A container service under orchdi runs in the agent with the supervisor as
// its client: no leaf process, the agent's notices taken in process (the
// agent's pid as leaf_pid, MAINPID as pid), the service log handed over with
// records stamped by the agent, a stop as a stop request.
func TestAgentServiceRunsWithoutALeafProcess(t *testing.T) {
	unit := agentUnit(t)
	state := filepath.Dir(unit)
	seen := fakeAgent(t, state, true)
	_, stop := runAsync(t, unit)
	eventually(t, 10*time.Second, "running after the agent's READY=1", func() bool {
		return statusOf(t, unit).State == contract.StateRunning
	})
	st := statusOf(t, unit)
	if st.LeafPid != os.Getpid() || st.Pid != 4242 || st.Message != "up" {
		t.Errorf("leaf_pid %d pid %d message %q; want the agent's pid %d, MAINPID 4242, STATUS up", st.LeafPid, st.Pid, st.Message, os.Getpid())
	}
	if procs, err := procfs.Processes(); err != nil {
		t.Error(err)
	} else if kids := procfs.Descendants(procs, os.Getpid()); len(kids) > 0 {
		t.Errorf("the supervisor started processes %v; a service in the agent needs none", kids)
	}
	if _, err := os.Stat(contract.Layout{StateDir: state}.NotifySocket("t.svc")); err == nil {
		t.Errorf("a notify socket was created; the agent's notices arrive over its connection")
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	got := <-seen
	if !got.stopped || got.files != 2 || got.req.SpecFile != "/nonexistent/t.svc.crun.json" {
		t.Errorf("agent saw stop %v, %d files, spec file %q; want a stop request, stdout and stderr, the unit's spec file", got.stopped, got.files, got.req.SpecFile)
	}
	if !slices.Contains(got.req.Env, logline.RecordsEnv+"=stdout,stderr") {
		t.Errorf("request env lacks %s=stdout,stderr: the agent would not stamp the service log", logline.RecordsEnv)
	}
	if log := readFile(contract.Layout{StateDir: state}.LogFile("t.svc")); log != "hello from the agent\n" {
		t.Errorf("service log %q; want the agent's line", log)
	}
	if st := statusOf(t, unit); st.State != contract.StateStopped || st.ExitCode == nil || *st.ExitCode != 0 {
		t.Errorf("state %s exit %s, want stopped with the agent's exit code 0", st.State, exitOf(st))
	}
}

// An agent that does not end the service within TIMEOUT_STOP is treated as
// a leaf that ignores SIGTERM: the supervisor drops the connection (the
// agent then stops and removes the task) and does not wait any longer.
func TestAgentServiceNotStoppedInTimeIsDropped(t *testing.T) {
	unit := agentUnit(t)
	seen := fakeAgent(t, filepath.Dir(unit), false)
	_, stop := runAsync(t, unit)
	eventually(t, 10*time.Second, "running after the agent's READY=1", func() bool {
		return statusOf(t, unit).State == contract.StateRunning
	})
	asked := time.Now()
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	got := <-seen
	if !got.stopped || got.closedAt.IsZero() {
		t.Fatalf("agent saw stop %v, connection closed %v; want both", got.stopped, !got.closedAt.IsZero())
	}
	// TIMEOUT_STOP is 1s in unitFor.
	if d := got.closedAt.Sub(asked); d < time.Second || d > 10*time.Second {
		t.Errorf("connection closed %s after the stop; want after TIMEOUT_STOP 1s, bounded", d)
	}
	if st := statusOf(t, unit); st.State != contract.StateStopped || st.ExitCode == nil || *st.ExitCode != 137 {
		t.Errorf("state %s exit %s, want stopped with 137", st.State, exitOf(st))
	}
}

func exitOf(st contract.Status) string {
	if st.ExitCode == nil {
		return "none"
	}
	return fmt.Sprint(*st.ExitCode)
}
