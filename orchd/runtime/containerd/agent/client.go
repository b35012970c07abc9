package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/logline"
)

const (
	// startTimeout bounds an agent's start (exec to listening).
	startTimeout = 30 * time.Second
	// exitTimeout bounds the last leaf's wait for the agent's exit.
	exitTimeout = 30 * time.Second
)

// Leaf is one service's side of the protocol (its supervisor, in the place
// a leaf process had): its run spec and the agent binary.
type Leaf struct {
	StateDir string
	// Orchd is the binary that runs the agent (`orchd containerd-agent`).
	Orchd string
	// Request names the run spec; Run adds the environment.
	Request Request
	// Stdout and Stderr are handed to the agent for the service's output.
	Stdout, Stderr *os.File
	// Notify sends a state the agent relays to the supervisor (sd_notify).
	Notify func(state string) error
	// Stop delivers the requests to stop the service (SIGTERM, SIGINT).
	Stop <-chan os.Signal
	// Accepted, when set, is called with the agent's pid once it has
	// accepted the service.
	Accepted func(agentPid int)
}

// Run runs the service through the state dir's agent, starting the agent
// when none runs, and returns the task's exit code. A stop arriving before
// the agent has accepted the service is sent as soon as it has. When ctx
// ends, Run returns at once: the agent sees the connection close, as when a
// leaf dies, and stops and removes the task.
func (l *Leaf) Run(ctx context.Context) (int, error) {
	req := l.Request
	if req.Env == nil {
		req.Env = os.Environ()
	}
	conn, err := l.connect(req)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	agentPid := conn.peerPid()
	if l.Accepted != nil {
		l.Accepted(agentPid)
	}
	msgs := conn.messages()
	stopSent := false
	for {
		select {
		case <-l.Stop:
			if !stopSent {
				stopSent = true
				if err := conn.send(Message{Stop: true}); err != nil {
					return 0, fmt.Errorf("ask the containerd agent to stop the service: %w", err)
				}
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		case m, ok := <-msgs:
			if !ok {
				return 0, fmt.Errorf("the containerd agent ended before the service did (%v); its log: %s", conn.readErr, LogFile(l.StateDir))
			}
			switch {
			case m.Notify != "":
				if l.Notify != nil {
					if err := l.Notify(m.Notify); err != nil {
						fmt.Fprintln(os.Stderr, "orchd: notify supervisor:", err)
					}
				}
			case m.Exit != nil:
				l.bye(conn, msgs, agentPid)
				return *m.Exit, nil
			case m.Error != "":
				l.bye(conn, msgs, agentPid)
				return 0, errors.New(m.Error)
			}
		}
	}
}

// bye closes the leaf's side and, when the agent says this was its last
// leaf, waits for the agent's exit: a grove whose leaves are gone has no
// agent either.
func (l *Leaf) bye(conn *agentConn, msgs <-chan Message, agentPid int) {
	conn.c.CloseWrite()
	t := time.NewTimer(exitTimeout)
	defer t.Stop()
	select {
	case m, ok := <-msgs:
		if ok && m.Bye == ByeExiting && agentPid > 0 {
			waitExit(agentPid, exitTimeout)
		}
	case <-t.C:
	}
}

// Drain waits until the state dir's agent, if one runs, runs no service of
// namespace (of services, when named), and for the agent's exit when
// nothing else keeps it. No agent is started for it.
func Drain(ctx context.Context, stateDir, namespace string, services []string) error {
	l := &Leaf{StateDir: stateDir, Request: Request{Drain: true, Namespace: namespace, Services: services}}
	conn, err := l.connectRunning(l.Request)
	if err != nil {
		return nil // no agent, nothing to wait for
	}
	defer conn.Close()
	agentPid := conn.peerPid()
	msgs := conn.messages()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the containerd agent to finish namespace %s: %w", namespace, ctx.Err())
		case m, ok := <-msgs:
			switch {
			case !ok:
				return nil // the agent ended: nothing of the namespace runs
			case m.Error != "":
				return errors.New(m.Error)
			case m.Exit != nil:
				l.bye(conn, msgs, agentPid)
				return nil
			}
		}
	}
}

// Hold starts the state dir's agent with orchd if none runs, in the
// background, and keeps it until release: tend calls it before starting
// supervisors whose leaves use the agent. A failure is left to the leaves,
// which start the agent themselves.
func Hold(stateDir, orchd, namespace string) (release func()) {
	l := &Leaf{StateDir: stateDir, Orchd: orchd, Request: Request{Hold: true, Namespace: namespace, Env: os.Environ()}}
	held := make(chan *agentConn, 1)
	go func() {
		c, err := l.connect(l.Request)
		if err != nil {
			c = nil
		}
		held <- c
	}()
	return func() {
		if c := <-held; c != nil {
			c.Close()
		}
	}
}

// connectRunning reaches an agent that already runs, under the shared lock.
func (l *Leaf) connectRunning(req Request) (*agentConn, error) {
	lock, err := os.OpenFile(LockFile(l.StateDir), os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := flock(lock, unix.LOCK_SH); err != nil {
		return nil, err
	}
	return l.handshake(req)
}

type agentConn struct {
	c *net.UnixConn
	r *bufio.Reader
	// closed ends messages' reader once the caller stops listening.
	closed chan struct{}
	// readErr is why messages' channel closed.
	readErr error
}

func (c *agentConn) Close() error {
	close(c.closed)
	return c.c.Close()
}

// messages delivers the agent's messages until the connection ends (then
// the channel closes and readErr says why) or is closed.
func (c *agentConn) messages() <-chan Message {
	out := make(chan Message)
	go func() {
		defer close(out)
		dec := json.NewDecoder(c.r)
		for {
			var m Message
			if err := dec.Decode(&m); err != nil {
				c.readErr = err
				return
			}
			select {
			case out <- m:
			case <-c.closed:
				return
			}
		}
	}()
	return out
}

func (c *agentConn) send(m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = c.c.Write(append(b, '\n'))
	return err
}

// connect reaches the agent and has the service accepted, starting an agent
// when none answers. Leaves connect under a shared lock; starting an agent
// takes it exclusively, as does an agent that exits, so a leaf never reaches
// an agent that is going away.
func (l *Leaf) connect(req Request) (*agentConn, error) {
	lock, err := os.OpenFile(LockFile(l.StateDir), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("containerd agent lock: %w", err)
	}
	defer lock.Close() // releases the flock
	if err := flock(lock, unix.LOCK_SH); err != nil {
		return nil, err
	}
	if c, err := l.handshake(req); err == nil {
		return c, nil
	}
	if err := flock(lock, unix.LOCK_UN); err != nil {
		return nil, err
	}
	if err := flock(lock, unix.LOCK_EX); err != nil {
		return nil, err
	}
	if c, err := l.handshake(req); err == nil {
		return c, nil // another leaf started one meanwhile
	}
	if err := l.startAgent(); err != nil {
		return nil, err
	}
	return l.handshake(req)
}

// LockAgent takes stateDir's agent lock exclusively (creating the file),
// as an exiting agent does; closing the file releases it.
func LockAgent(stateDir string) (*os.File, error) {
	f, err := os.OpenFile(LockFile(stateDir), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("containerd agent lock: %w", err)
	}
	if err := flock(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			if err != nil {
				return fmt.Errorf("containerd agent lock %s: %w", f.Name(), err)
			}
			return nil
		}
	}
}

// handshake dials the agent, sends the request with the leaf's stdout and
// stderr, and waits for the agent to accept it.
func (l *Leaf) handshake(req Request) (*agentConn, error) {
	addr := &net.UnixAddr{Name: Address(l.StateDir), Net: "unix"}
	c, err := net.DialUnix("unix", nil, addr)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(req)
	if err != nil {
		c.Close()
		return nil, err
	}
	var rights []byte
	if !req.Drain && !req.Hold {
		rights = unix.UnixRights(int(l.Stdout.Fd()), int(l.Stderr.Fd()))
	}
	if _, _, err := c.WriteMsgUnix(append(b, '\n'), rights, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("send the service to the containerd agent: %w", err)
	}
	ac := &agentConn{c: c, r: bufio.NewReader(c), closed: make(chan struct{})}
	c.SetReadDeadline(time.Now().Add(startTimeout))
	line, err := ac.r.ReadBytes('\n')
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("containerd agent: %w", err)
	}
	var m Message
	if err := json.Unmarshal(line, &m); err != nil || !m.Accepted {
		c.Close()
		if m.Error != "" {
			return nil, errors.New(m.Error)
		}
		return nil, fmt.Errorf("containerd agent: unexpected answer %q", strings.TrimSpace(string(line)))
	}
	return ac, nil
}

// startAgent execs the agent in a session of its own (signals to the
// leaf's process group must not reach it) and waits until it listens.
func (l *Leaf) startAgent() error {
	logf, err := os.OpenFile(LogFile(l.StateDir), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("containerd agent log: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("containerd agent: %w", err)
	}
	defer r.Close()
	var env []string
	for _, kv := range os.Environ() {
		// The leaf's supervisor and log are not the agent's.
		if strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, logline.RecordsEnv+"=") {
			continue
		}
		env = append(env, kv)
	}
	cmd := &exec.Cmd{
		Path:        l.Orchd,
		Args:        []string{l.Orchd, Command, "--state-dir", l.StateDir},
		Env:         env,
		Stdout:      logf,
		Stderr:      logf,
		ExtraFiles:  []*os.File{w},
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("start the containerd agent %s: %w", l.Orchd, err)
	}
	// Not waited for: the agent outlives this leaf when others use it.
	defer cmd.Process.Release()
	r.SetReadDeadline(time.Now().Add(startTimeout))
	// One line, not EOF: the agent's copy of the pipe may stay open.
	ready, err := bufio.NewReader(r).ReadString('\n')
	if strings.TrimSpace(ready) != "ready" {
		return fmt.Errorf("the containerd agent did not start (%v); its log: %s", err, LogFile(l.StateDir))
	}
	return nil
}
