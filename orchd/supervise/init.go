package supervise

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/logline"
)

// Why an init of our own: the service (and pre_start, post_stop) is started
// as `orchd supervise --init` in a new PID namespace. The init is PID 1 there;
// when it exits the kernel kills everything left in the namespace, so no
// grandchild (a shell's `sleep &`) can outlive its service. The init learns of
// its supervisor's death twice over: PR_SET_PDEATHSIG (SIGTERM) and EOF on an
// inherited pipe. Either way it stops its child gracefully (SIGTERM to the
// child's group, the stop timeout, then SIGKILL to the whole namespace) and
// exits, so cleanup is bounded even when the supervisor was SIGKILLed. STOP and
// HEALTHCHECK commands join the running service's namespace instead (they must
// see its pids) and die with it. A cgroup would also work, but cgroup v1 has
// no atomic "kill all" and no notification when it empties; a PID namespace
// gives both. Unprivileged, the init also gets a user namespace mapping only
// the caller's uid (USER then cannot switch users).
//
// The init also applies what must be in place before the service's first
// instruction: its cgroups (joined by the init, inherited by the child) and
// its rlimits (set on the init, inherited: no race as with prlimit after start).
//
// A container service's leaf (contract.Exec.Leaf) needs none of this: its
// processes live in a containerd task with a PID namespace of its own, it
// stops that task on SIGTERM (PDEATHSIG sends one when the supervisor dies)
// and it stamps the service log itself. The supervisor execs it directly:
// one process and one exec fewer per service.

const (
	initFlag = "--init"
	// initEnv carries the init's JSON spec; env, not argv, because argv is
	// world-readable in /proc.
	initEnv = "ORCHD_SUPERVISE_INIT"
	// parentFD is the read end of the pipe whose EOF means "supervisor gone".
	parentFD = 3
	// reportFD is where the init writes its child's host pid.
	reportFD = 4
	// exitCannotStart is the init's status when the command could not be started.
	exitCannotStart = 127
)

// initSpec is what a supervisor hands its init.
type initSpec struct {
	Argv        []string          `json:"argv"`
	Rlimits     []contract.Rlimit `json:"rlimits,omitempty"`
	UID         *uint32           `json:"uid,omitempty"`
	GID         uint32            `json:"gid,omitempty"`
	Groups      []uint32          `json:"groups,omitempty"`
	TimeoutStop time.Duration     `json:"timeout_stop"`
	Cgroups     []string          `json:"cgroups,omitempty"`
	// StampStdout and StampStderr: the stream is orchd's service log; the
	// init relays it through a pipe and writes logline records.
	StampStdout bool `json:"stamp_stdout,omitempty"`
	StampStderr bool `json:"stamp_stderr,omitempty"`
}

// drainBound bounds how long a command's output is still read after the
// command exited (the rest of its namespace killed, or a joined command's
// leftovers): normally the pipes end at once.
const drainBound = 2 * time.Second

// InitMain is the init's entry point (`orchd supervise --init --spec UNIT`);
// it returns the exit status: the child's, or 128+signal when it was killed.
func InitMain() int {
	raw := os.Getenv(initEnv)
	os.Unsetenv(initEnv)
	var sp initSpec
	if err := json.Unmarshal([]byte(raw), &sp); err != nil || len(sp.Argv) == 0 {
		fmt.Fprintf(os.Stderr, "orchd init: bad or missing %s (this command is started by `orchd supervise`)\n", initEnv)
		return exitCannotStart
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGCHLD)

	// Why the init relays the service log and not the supervisor: the init
	// outlives a SIGKILLed supervisor until its child has stopped, so what
	// the service prints while stopping is still written.
	rel, err := startRelays(sp)
	if err != nil {
		fmt.Fprintf(os.Stderr, "orchd init: %v\n", err)
		return exitCannotStart
	}
	stderr := rel.stderr

	parentGone := make(chan struct{})
	go func() {
		f := os.NewFile(parentFD, "supervisor")
		if f != nil {
			io.Copy(io.Discard, f)
		}
		close(parentGone)
	}()

	if err := joinCgroups(sp.Cgroups); err != nil {
		fmt.Fprintf(stderr, "orchd init: %v\n", err)
		return exitCannotStart
	}
	for _, rl := range sp.Rlimits {
		res, ok := rlimitResource(rl.Type)
		if !ok {
			fmt.Fprintf(stderr, "orchd init: unknown rlimit %s\n", rl.Type)
			return exitCannotStart
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			fmt.Fprintf(stderr, "orchd init: set %s=%d:%d: %v\n", rl.Type, rl.Soft, rl.Hard, err)
			return exitCannotStart
		}
	}
	path, err := exec.LookPath(sp.Argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "orchd init: %v\n", err)
		return exitCannotStart
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	if sp.UID != nil {
		attr.Credential = &syscall.Credential{Uid: *sp.UID, Gid: sp.GID, Groups: sp.Groups}
	}
	p, err := os.StartProcess(path, sp.Argv, &os.ProcAttr{
		Env:   os.Environ(),
		Files: rel.files,
		Sys:   attr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "orchd init: start %s: %v\n", sp.Argv[0], err)
		return exitCannotStart
	}
	rel.started()
	child := p.Pid
	reportChild()

	var (
		stopping bool
		killAt   <-chan time.Time
	)
	stop := func() {
		if stopping {
			return
		}
		stopping = true
		syscall.Kill(-child, syscall.SIGTERM)
		killAt = time.After(sp.TimeoutStop)
	}
	for {
		select {
		case s := <-sigs:
			if s != syscall.SIGCHLD {
				stop()
				continue
			}
			// As PID 1 we reap every orphan of the namespace, not only our child.
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if err != nil || pid <= 0 {
					break
				}
				if pid == child {
					// Returning ends PID 1 and the kernel kills the rest;
					// kill it first so its ends of the log pipes close and
					// the relays drain all that was written.
					if os.Getpid() == 1 {
						syscall.Kill(-1, syscall.SIGKILL)
					}
					rel.drain(drainBound)
					return exitStatus(ws)
				}
			}
		case <-parentGone:
			parentGone = nil
			stop()
		case <-killAt:
			if os.Getpid() == 1 {
				// -1 from PID 1 of a namespace: every process in it but us.
				syscall.Kill(-1, syscall.SIGKILL)
			} else {
				// A joined namespace belongs to the service's init.
				syscall.Kill(-child, syscall.SIGKILL)
			}
		}
	}
}

// reportChild tells the supervisor the child's pid as the host sees it: /proc
// is the host's mount, so its children files hold host pids.
func reportChild() {
	f := os.NewFile(reportFD, "report")
	if f == nil {
		return
	}
	defer f.Close()
	files, _ := filepath.Glob("/proc/self/task/*/children")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		if fields := strings.Fields(string(b)); len(fields) > 0 {
			fmt.Fprintln(f, fields[0])
			return
		}
	}
}

func exitStatus(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func rlimitResource(name string) (int, bool) {
	switch name {
	case "RLIMIT_NOFILE":
		return unix.RLIMIT_NOFILE, true
	case "RLIMIT_NPROC":
		return unix.RLIMIT_NPROC, true
	case "RLIMIT_CORE":
		return unix.RLIMIT_CORE, true
	case "RLIMIT_STACK":
		return unix.RLIMIT_STACK, true
	case "RLIMIT_MEMLOCK":
		return unix.RLIMIT_MEMLOCK, true
	case "RLIMIT_AS":
		return unix.RLIMIT_AS, true
	case "RLIMIT_FSIZE":
		return unix.RLIMIT_FSIZE, true
	case "RLIMIT_CPU":
		return unix.RLIMIT_CPU, true
	}
	return 0, false
}

// proc is one running init (and so one command) seen from the supervisor.
type proc struct {
	pid  int // the init's pid (host namespace)
	done chan struct{}
	code int   // valid after done
	err  error // valid after done: a wait error other than a non-zero exit
	sig  func(syscall.Signal) error
	// report yields the child's host pid (read once, by servicePid).
	report *os.File
	// notices, when not nil, carries the service's sd_notify notices in
	// process (a service run by the containerd agent; see spawnAgent).
	notices chan notice
}

// spawner starts inits.
type spawner struct {
	exe      string // path to exec: /proc/self/exe survives a replaced binary
	argv0    string // the name shown in ps
	unitPath string // names the state dir in the init's argv, for fell's scan
}

// spawnOpts are the per-command settings of spawn.
type spawnOpts struct {
	timeoutStop time.Duration
	out         outputs
	// join, when non-zero, is the service init whose PID namespace the command
	// joins: STOP and HEALTHCHECK commands must see the service's pids (a
	// pidfile written by the service holds them).
	join int
	// cgroups the init joins before starting the command.
	cgroups []string
	// leaf: the command is a leaf (contract.Exec.Leaf) and runs without an
	// init (see leafAttr).
	leaf bool
}

// spawn starts argv with the process context pc: under a new init in a new
// PID namespace, or, with o.join, directly inside the service's namespace
// (no init of its own: the service's init reaps and, when it goes, kills it;
// this also keeps frequent healthchecks cheap). The goroutine that forks
// keeps its OS thread locked until the child exits: PDEATHSIG fires when the
// creating thread exits, not the process, and setns(CLONE_NEWPID) applies to
// that thread's future children only.
func (s spawner) spawn(argv []string, pc procCtx, o spawnOpts) (*proc, error) {
	// What an init applies before its child runs (cgroups, rlimits) keeps
	// a leaf under one.
	leaf := o.leaf && len(o.cgroups) == 0 && len(pc.rlimits) == 0
	joined := o.join != 0 && !pc.userns
	direct := joined || leaf
	var cmd *exec.Cmd
	var r, w, rr, rw *os.File // parent-death pipe and pid report pipe (init only)
	if direct {
		path, err := exec.LookPath(argv[0])
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", argv[0], err)
		}
		cmd = &exec.Cmd{Path: path, Args: argv, Env: pc.env, Dir: pc.dir,
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
		if leaf {
			cmd.SysProcAttr = leafAttr()
			if v := o.out.recordsValue(); v != "" {
				cmd.Env = append(append([]string(nil), pc.env...), logline.RecordsEnv+"="+v)
			}
		}
		if pc.cred != nil {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: pc.cred.uid, Gid: pc.cred.gid, Groups: pc.cred.groups}
		}
	} else {
		sp := initSpec{Argv: argv, Rlimits: pc.rlimits, TimeoutStop: o.timeoutStop, Cgroups: o.cgroups,
			StampStdout: o.out.stdout.f != nil && o.out.stdout.stamp,
			StampStderr: o.out.stderr.f != nil && o.out.stderr.stamp}
		if pc.cred != nil {
			uid := pc.cred.uid
			sp.UID, sp.GID, sp.Groups = &uid, pc.cred.gid, pc.cred.groups
		}
		js, err := json.Marshal(sp)
		if err != nil {
			return nil, fmt.Errorf("encode init spec: %w", err)
		}
		if r, w, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("pipe: %w", err)
		}
		if rr, rw, err = os.Pipe(); err != nil {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("pipe: %w", err)
		}
		cmd = &exec.Cmd{
			Path:        s.exe,
			Args:        []string{s.argv0, "supervise", initFlag, "--spec", s.unitPath},
			Env:         append(append([]string(nil), pc.env...), initEnv+"="+string(js)),
			Dir:         pc.dir,
			ExtraFiles:  []*os.File{r, rw},
			SysProcAttr: initAttr(pc),
		}
	}
	// A typed nil *os.File must not become a non-nil io.Writer.
	for _, st := range []struct {
		o      output
		stream string
		dst    *io.Writer
	}{{o.out.stdout, logline.Stdout, &cmd.Stdout}, {o.out.stderr, logline.Stderr, &cmd.Stderr}} {
		switch {
		case st.o.f == nil:
		case leaf:
			// The leaf holds the file itself and stamps the records, so
			// its output outlives a killed supervisor.
			*st.dst = st.o.f
		case direct:
			// No init to relay: exec's own copy goroutine stamps the
			// records, bounded after exit by WaitDelay.
			*st.dst = st.o.writer(st.stream)
		default:
			*st.dst = st.o.f
		}
	}
	if direct {
		cmd.WaitDelay = drainBound
	}
	closeAll := func(fs ...*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	p := &proc{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread exits with this goroutine, after the child.
		if joined && !leaf {
			if err := joinPIDNamespace(o.join); err != nil {
				started <- err
				return
			}
		}
		err := cmd.Start()
		closeAll(r, rw)
		if err != nil {
			closeAll(w, rr)
			started <- fmt.Errorf("start %s: %w", argv[0], err)
			return
		}
		pid := cmd.Process.Pid
		p.pid, p.report = pid, rr
		if direct {
			// The command leads its own group; signal all of it.
			p.sig = func(sig syscall.Signal) error { return syscall.Kill(-pid, sig) }
		} else {
			p.sig = func(sig syscall.Signal) error { return cmd.Process.Signal(sig) }
		}
		started <- nil
		werr := cmd.Wait()
		closeAll(w, rr)
		p.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			p.code = exitStatus(ws)
		}
		if _, isExit := werr.(*exec.ExitError); werr != nil && !isExit && !errors.Is(werr, exec.ErrWaitDelay) {
			p.err = werr
		}
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// waitFor waits for p to exit within d; false on timeout.
func (p *proc) waitFor(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// kill SIGKILLs the init (the kernel then kills its namespace) and waits.
func (p *proc) kill() {
	p.sig(syscall.SIGKILL)
	<-p.done
}

// servicePid is the host pid of the init's child (what survey shows), as the
// init reports it; the init's own pid if it could not tell.
func (p *proc) servicePid() int {
	if p.report == nil {
		return p.pid
	}
	// Bounded: the init writes right after starting its child, or exits.
	p.report.SetReadDeadline(time.Now().Add(30 * time.Second))
	var pid int
	if _, err := fmt.Fscan(p.report, &pid); err != nil || pid <= 0 {
		return p.pid
	}
	return pid
}
