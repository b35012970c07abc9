package supervise

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/logline"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
)

// Why a container service has no leaf process under orchdi: its task lives
// in containerd, its containerd client in the state dir's agent (package
// agent), so all a leaf process did was relay: hand the agent the service's
// log files, pass on its notices and the stop request, and exit with the
// task's code. The supervisor speaks to the agent itself instead, one process
// per container service rather than two. What a leaf's death meant, the
// supervisor's death now means: the agent sees the connection close and
// stops and removes the task.

// noticeBuffer is how many of the agent's notices wait for the supervisor.
const noticeBuffer = 32

// agentStart is a containerd unit's start command taken apart:
// `ORCHD containerd-run --spec-file F` (or --spec B64).
type agentStart struct {
	orchd, specFile, spec string
}

// agentRun reports whether the unit's start runs through the state dir's
// containerd agent, and with what. Limits or rlimits on the supervisor's side
// (none that the containerd runtime writes) need a process to apply them to:
// such a unit execs its start command as written.
func agentRun(u contract.Unit) (agentStart, bool) {
	start := u.Exec.Start
	if !u.Exec.Agent || len(start) < 2 || start[1] != "containerd-run" ||
		u.Process.Resources != nil || len(u.Process.Rlimits) > 0 {
		return agentStart{}, false
	}
	fs := flag.NewFlagSet("containerd-run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a := agentStart{orchd: start[0]}
	fs.StringVar(&a.specFile, "spec-file", "", "")
	fs.StringVar(&a.spec, "spec", "", "")
	if err := fs.Parse(start[2:]); err != nil || fs.NArg() > 0 || (a.specFile == "") == (a.spec == "") {
		return agentStart{}, false
	}
	return a, true
}

// spawnAgent starts the service in the agent from this process. Its proc's
// pid is the agent's; SIGTERM (or SIGINT) asks the agent to stop the service
// (its STOP, TIMEOUT_STOP), SIGKILL drops the connection (the agent stops
// and removes the task) and ends the proc with 128+9. A service the agent
// cannot take ends with code 1 and the reason in its log, as a leaf's would.
func (s *supervisor) spawnAgent(a agentStart, pc procCtx, o spawnOpts) (*proc, error) {
	stdout, stderr := o.out.stdout.f, o.out.stderr.f
	var null *os.File
	if stdout == nil || stderr == nil {
		var err error
		if null, err = os.OpenFile(os.DevNull, os.O_WRONLY, 0); err != nil {
			return nil, fmt.Errorf("start %s: %w", s.unit.Service, err)
		}
		if stdout == nil {
			stdout = null
		}
		if stderr == nil {
			stderr = null
		}
	}
	env := pc.env
	if v := o.out.recordsValue(); v != "" {
		env = append(append([]string(nil), env...), logline.RecordsEnv+"="+v)
	}
	ctx, abort := context.WithCancel(context.Background())
	stop := make(chan os.Signal, 1)
	p := &proc{done: make(chan struct{}), notices: make(chan notice, noticeBuffer)}
	accepted := make(chan int, 1)
	agentPid := 0 // Run's goroutine: set by Accepted before any Notify
	l := &agent.Leaf{
		StateDir: s.unit.StateDir,
		Orchd:    a.orchd,
		Request:  agent.Request{SpecFile: a.specFile, Spec: a.spec, Notify: s.unit.Exec.Notify, Env: env},
		Stdout:   stdout,
		Stderr:   stderr,
		Stop:     stop,
		Accepted: func(pid int) { agentPid = pid; accepted <- pid },
		// Never blocks the connection: the supervisor reads notices only
		// while it watches the service (not while it stops it, when a
		// health verdict may still arrive). The buffer stands in for the
		// notify socket's: a notice nobody reads is dropped.
		Notify: func(state string) error {
			select {
			case p.notices <- notice{pid: agentPid, fields: parseNotice([]byte(state))}:
			default:
				s.log.Debug("notice from the agent dropped (not read)", "state", state)
			}
			return nil
		},
	}
	p.sig = func(sig syscall.Signal) error {
		switch sig {
		case syscall.SIGKILL:
			abort()
		case syscall.SIGTERM, syscall.SIGINT:
			select {
			case stop <- sig:
			default: // one request is enough
			}
		}
		return nil
	}
	ran := make(chan struct{})
	go func() {
		defer close(p.done)
		defer abort()
		if null != nil {
			defer null.Close()
		}
		code, err := l.Run(ctx)
		close(ran)
		switch {
		case ctx.Err() != nil:
			p.code = 128 + int(syscall.SIGKILL)
		case err != nil:
			p.code = 1
			w := o.out.stderr.writer(logline.Stderr)
			if o.out.stderr.f == nil {
				w = io.Discard
			}
			fmt.Fprintf(w, "orchd: %v\n", err)
		default:
			p.code = code
		}
	}()
	select {
	case p.pid = <-accepted:
	case <-ran:
	}
	return p, nil
}
