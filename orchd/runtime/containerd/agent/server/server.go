// Package server is the containerd agent (`orchd containerd-agent`): one
// process per state dir that runs the container services of its leaves
// (package agent has the protocol and the leaf's side). Each service runs
// through leaf.Run exactly as an in-process leaf would, with the leaf's
// stdout, stderr and environment, so its log, notices and exit code do not
// change; what the agent saves is a Go process with the containerd client
// per service.
package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/logline"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
	"github.com/orchd/orchd/orchd/runtime/containerd/leaf"
)

const (
	// byeTimeout bounds the wait for a leaf to close its side after its exit.
	byeTimeout = 30 * time.Second
	// dialTimeout bounds a shared connection's dial.
	dialTimeout = 10 * time.Second
)

// Serve listens on the state dir's agent address, writes "ready" to ready
// once it does, and runs services until its last leaf has gone (then it
// returns nil) or ctx ends (then every service is stopped first).
func Serve(ctx context.Context, stateDir string, ready io.Writer, log *slog.Logger) error {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: agent.Address(stateDir), Net: "unix"})
	if err != nil {
		return fmt.Errorf("containerd agent: listen: %w", err)
	}
	defer ln.Close()
	if ready != nil {
		if _, err := io.WriteString(ready, "ready\n"); err != nil {
			return fmt.Errorf("containerd agent: report ready: %w", err)
		}
	}
	s := &server{stateDir: stateDir, ln: ln, log: log, done: make(chan struct{})}
	defer s.closeClients()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.accept(sctx)
	select {
	case <-s.done:
		log.Info("last service gone; exiting")
	case <-ctx.Done():
		log.Info("stopping every service", "cause", context.Cause(ctx))
		ln.Close()
		cancel()
		s.wg.Wait()
	}
	return nil
}

type server struct {
	stateDir string
	ln       *net.UnixListener
	log      *slog.Logger
	wg       sync.WaitGroup

	// clients are the connections leaves share, one per daemon socket and
	// namespace: dialled once, with the image's blobs read once.
	clientMu sync.Mutex
	clients  map[[2]string]*client.Client

	mu      sync.Mutex
	active  int
	closing bool
	// jobs are the services running, by container id: a service's next
	// start waits for its previous one (a killed leaf's service is still
	// being stopped), and a drain waits for a namespace's.
	jobs map[string]*job
	done chan struct{} // closed when the last leaf has gone and the socket is closed
}

func (s *server) accept(ctx context.Context) {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			return // closed
		}
		if !samePeer(c) {
			s.log.Warn("refused a peer of another user")
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.active++
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(ctx, c)
	}
}

// serve runs one leaf's service and then, after the leaf has closed its
// side, says goodbye; the last leaf's goodbye ends the agent.
func (s *server) serve(ctx context.Context, c *net.UnixConn) {
	defer s.wg.Done()
	w := &sender{c: c}
	r := bufio.NewReader(c)
	req, files, err := readRequest(c, r)
	// Accepted before anything can fail: the leaf then takes an error as
	// the agent's answer, not as an agent it could not reach.
	w.send(agent.Message{Accepted: true})
	// From here one goroutine reads the connection: a stop request, or the
	// leaf gone (EOF, an error), stops the service; EOF ends the goodbye.
	stop := make(chan struct{})
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		stopped := false
		dec := json.NewDecoder(r)
		for {
			var m agent.Message
			err := dec.Decode(&m)
			if (err != nil || m.Stop) && !stopped {
				stopped = true
				close(stop)
			}
			if err != nil {
				return
			}
		}
	}()
	code := 0
	if err == nil {
		code, err = s.run(ctx, req, files, w, stop)
	} else {
		err = fmt.Errorf("containerd agent: %w", err)
	}
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		w.send(agent.Message{Error: err.Error()})
	} else {
		w.send(agent.Message{Exit: &code})
	}
	// The leaf closes its side once it has the result.
	select {
	case <-eof:
	case <-time.After(byeTimeout):
	}
	s.leave(c, w)
}

// leave counts a leaf out. The last one takes the lock leaves connect under
// (exclusively) before the socket closes, so no leaf is caught connecting to
// an agent that exits; it is told so and waits for the exit.
func (s *server) leave(c *net.UnixConn, w *sender) {
	s.mu.Lock()
	s.active--
	last := s.active == 0
	s.mu.Unlock()
	if !last {
		w.send(agent.Message{Bye: agent.ByeStaying})
		c.Close()
		return
	}
	lock, err := agent.LockAgent(s.stateDir)
	if err != nil {
		// No lock to take (the state dir was removed, say). Exiting without
		// it risks failing a leaf that connects right now (its service then
		// restarts); staying would keep an agent with no client for good.
		s.log.Warn("agent lock; exiting without it", "err", err)
	}
	s.mu.Lock()
	if s.active > 0 { // a leaf connected meanwhile
		s.mu.Unlock()
		if lock != nil {
			lock.Close()
		}
		w.send(agent.Message{Bye: agent.ByeStaying})
		c.Close()
		return
	}
	s.closing = true
	s.ln.Close()
	s.mu.Unlock()
	w.send(agent.Message{Bye: agent.ByeExiting})
	// The lock and this connection close with the process: the leaf waits
	// for its exit, and leaves that come later start a new agent.
	close(s.done)
}

// run accepts the request and runs the service until it ends or stop closes.
func (s *server) run(ctx context.Context, req agent.Request, files []*os.File, w *sender, stop <-chan struct{}) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	switch {
	case req.Drain:
		return 0, s.drain(ctx, req)
	case req.Hold:
		return 0, s.hold(ctx, req)
	}
	if len(files) != 2 {
		return 0, fmt.Errorf("containerd agent: request came with %d descriptors, want stdout and stderr", len(files))
	}
	rs, err := crd.LoadRunSpec(req.SpecFile, req.Spec)
	if err != nil {
		return 0, err
	}
	env := envMap(req.Env)
	stdout, stderr := logline.Streams(env[logline.RecordsEnv], files[0], files[1])
	log := slog.New(slog.NewTextHandler(stderr, nil))
	getenv := func(k string) string { return env[k] }
	opts := leaf.Options{Stdout: stdout, Stderr: stderr, Log: log, Getenv: getenv}
	if opts.Client, err = s.client(rs.Socket, rs.Namespace, getenv); err != nil {
		return 0, err
	}
	if req.Notify {
		opts.Notify = func(state string) error { return w.send(agent.Message{Notify: state}) }
	}
	end, err := s.begin(ctx, rs)
	if err != nil {
		return 0, err
	}
	defer end()
	code, err := leaf.Run(ctx, rs, opts)
	if err != nil {
		fmt.Fprintln(stderr, "orchd:", err)
	}
	return code, err
}

// job is one service the agent runs.
type job struct {
	namespace, service string
	done               chan struct{}
}

// begin registers rs's service, after its previous run (same container id)
// has ended: a leaf killed while its service ran leaves the agent stopping
// and removing that container, which must not meet the next start.
func (s *server) begin(ctx context.Context, rs *crd.RunSpec) (end func(), err error) {
	j := &job{namespace: rs.Namespace, service: rs.Service.Name, done: make(chan struct{})}
	for {
		s.mu.Lock()
		prev, busy := s.jobs[rs.ContainerID]
		if !busy {
			if s.jobs == nil {
				s.jobs = map[string]*job{}
			}
			s.jobs[rs.ContainerID] = j
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		s.log.Info("waiting for the previous run of the service to end", "container", rs.ContainerID)
		select {
		case <-prev.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped before start, while the previous run of %s was ending", rs.ContainerID)
		}
	}
	return func() {
		s.mu.Lock()
		delete(s.jobs, rs.ContainerID)
		s.mu.Unlock()
		close(j.done)
	}, nil
}

// hold keeps the agent until the holder closes its side, and meanwhile
// makes the containerd connection the holder's services will use.
func (s *server) hold(ctx context.Context, req agent.Request) error {
	if req.Namespace != "" {
		env := envMap(req.Env)
		if c, err := s.client("", req.Namespace, func(k string) string { return env[k] }); err == nil {
			c.Version(ctx) // connects; a failure is the services' to report
		}
	}
	<-ctx.Done()
	return nil
}

// drain answers once no service of req.Namespace (of req.Services, when
// named) runs, or fails when the asker goes away first (ctx).
func (s *server) drain(ctx context.Context, req agent.Request) error {
	for {
		var wait chan struct{}
		s.mu.Lock()
		for _, j := range s.jobs {
			if j.namespace == req.Namespace && (len(req.Services) == 0 || slices.Contains(req.Services, j.service)) {
				wait = j.done
				break
			}
		}
		s.mu.Unlock()
		if wait == nil {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("drain %s: %w", req.Namespace, ctx.Err())
		}
	}
}

// client is the shared connection for a daemon socket ("": the leaf's
// environment's, else the default) and namespace.
func (s *server) client(socket, namespace string, getenv func(string) string) (*client.Client, error) {
	socket = crd.ResolveSocketEnv(socket, getenv)
	key := [2]string{socket, namespace}
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	if c, ok := s.clients[key]; ok {
		return c, nil
	}
	c, err := crd.Dial(socket, namespace, dialTimeout)
	if err != nil {
		return nil, err
	}
	if s.clients == nil {
		s.clients = map[[2]string]*client.Client{}
	}
	s.clients[key] = c
	return c, nil
}

// closeClients ends the shared connections as the agent exits.
func (s *server) closeClients() {
	s.clientMu.Lock()
	defer s.clientMu.Unlock()
	for _, c := range s.clients {
		c.Close()
	}
}

// readRequest reads the leaf's first line and the two descriptors sent with it.
func readRequest(c *net.UnixConn, r *bufio.Reader) (agent.Request, []*os.File, error) {
	var req agent.Request
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(2*4))
	c.SetReadDeadline(time.Now().Add(byeTimeout))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		return req, nil, fmt.Errorf("read request: %w", err)
	}
	var files []*os.File
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			fds, err := unix.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("leaf fd %d", fd)))
			}
		}
	}
	// The rest of the line, if the first read did not hold all of it.
	line := buf[:n]
	if !strings.Contains(string(line), "\n") {
		rest, err := r.ReadBytes('\n')
		if err != nil {
			return req, files, fmt.Errorf("read request: %w", err)
		}
		line = append(line, rest...)
	}
	if err := json.Unmarshal(line, &req); err != nil {
		return req, files, fmt.Errorf("read request: %w", err)
	}
	return req, files, nil
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// sender writes messages one at a time (notices come from the leaf's
// goroutines).
type sender struct {
	mu sync.Mutex
	c  *net.UnixConn
}

func (w *sender) send(m agent.Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err = w.c.Write(append(b, '\n'))
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return err
}
