// Package leaf is `orchd containerd-run`: one foreground process that owns a
// container's whole lifecycle on containerd's v2 Go client. It tears down a
// stale container with the same id, gets the image (import, use, or pull)
// under a lease, creates container + snapshot from the service spec, starts
// the task with its stdio on the leaf's own, waits, and on SIGTERM/SIGINT
// stops the task (SIGTERM, grace, SIGKILL to all) and deletes everything.
//
// With RECREATE never (the default) the container and its snapshot outlive a
// start and the next start of the same definition reuses them; RECREATE
// always makes a fresh container and snapshot on every start (recreate.go).
package leaf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/errdefs"

	"github.com/orchd/orchd/orchd/contract"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

const (
	dialTimeout = 10 * time.Second
	// cleanupTimeout bounds teardown, which runs on a fresh context so a
	// cancelled leaf still removes what it created.
	cleanupTimeout = 30 * time.Second
	// leaseExpiry bounds how long a killed leaf's half-fetched content lives.
	leaseExpiry = time.Hour
	// killWait bounds the wait for a SIGKILLed task to be reported exited.
	killWait = 10 * time.Second
)

// Options are the leaf's I/O; zero values mean the process's own.
type Options struct {
	Stdout, Stderr io.Writer
	Log            *slog.Logger
	// CgroupRoot overrides /sys/fs/cgroup (tests).
	CgroupRoot string
	// ReconnectBound overrides ReconnectBound (tests).
	ReconnectBound time.Duration
	// Client, when set, is a connection shared with other leaves (the
	// agent's, one per daemon and namespace): the leaf uses it instead of
	// dialling, until a containerd restart makes it dial its own, and never
	// closes it.
	Client *client.Client
	// Getenv reads the leaf's environment (NOTIFY_SOCKET, the socket
	// variable); nil means the process's own. The containerd agent runs
	// many leaves in one process, each with its client's environment.
	Getenv func(string) string
	// Notify sends an sd_notify state to the supervisor; nil means to
	// $NOTIFY_SOCKET, from this process.
	Notify func(state string) error
}

// Run runs the service of rs to completion (or until ctx is cancelled) and
// returns the task's exit code. An error means the container could not be run.
func Run(ctx context.Context, rs *crd.RunSpec, opts Options) (int, error) {
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if rs.Socket == "" {
		// Resolved once, from the leaf's environment, for every dial.
		cp := *rs
		cp.Socket = crd.ResolveSocketEnv("", opts.Getenv)
		rs = &cp
	}
	if rs.Label == "" {
		// The FIFO dir is named by the label; never let it collapse to the shared parent.
		cp := *rs
		cp.Label = contract.Label(rs.Namespace, rs.Service.Name)
		rs = &cp
	}
	log = log.With("service", rs.Service.Name, "container", rs.ContainerID)
	l := &leaf{rs: rs, opts: opts, log: log, snapshotter: rs.Snapshotter}
	if l.snapshotter == "" {
		l.snapshotter = crd.DefaultSnapshotter
	}
	code, err := l.run(ctx)
	return code, crd.Unreachable(err, crd.ResolveSocket(rs.Socket))
}

type leaf struct {
	rs          *crd.RunSpec
	opts        Options
	log         *slog.Logger
	snapshotter string

	mu sync.Mutex
	c  *client.Client // replaced when the leaf reconnects

	// releasing are create leases being released in the background.
	releasing sync.WaitGroup
}

func (l *leaf) client() *client.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}

// setClient replaces the connection after a containerd restart.
func (l *leaf) setClient(c *client.Client) {
	l.mu.Lock()
	old := l.c
	l.c = c
	l.mu.Unlock()
	if old != nil && old != c && old != l.opts.Client {
		old.Close()
	}
}

// bg is a namespaced context detached from the leaf's cancellation.
func (l *leaf) bg() context.Context {
	return namespaces.WithNamespace(context.Background(), l.rs.Namespace)
}

func (l *leaf) cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(l.bg(), cleanupTimeout)
}

func (l *leaf) run(ctx context.Context) (int, error) {
	rs := l.rs
	socket := crd.ResolveSocket(rs.Socket)
	c := l.opts.Client
	if c == nil {
		var err error
		if c, err = crd.Dial(socket, rs.Namespace, dialTimeout); err != nil {
			return 0, err
		}
	}
	l.setClient(c)
	defer func() {
		l.releasing.Wait()
		if c := l.client(); c != l.opts.Client {
			c.Close()
		}
	}()
	ctx = namespaces.WithNamespace(ctx, rs.Namespace)
	fifoDir := contract.Layout{StateDir: rs.StateDir}.FIFODir(rs.Label)

	hash, err := specHash(rs)
	if err != nil {
		return 0, fmt.Errorf("service %s: %w", rs.Service.Name, err)
	}
	prep := l.prepare(ctx)
	ctr, absent, err := l.reusable(ctx, hash)
	if err != nil {
		l.log.Warn("cannot reuse the container; making a fresh one", "err", err)
		ctr = nil
	}
	if ctr != nil {
		// The old task's shim must be gone before a new task takes its bundle.
		if err := crd.WaitShims(ctx, socket, rs.Namespace, func(id string) bool { return id == rs.ContainerID }); err != nil {
			l.log.Warn("a shim of the previous task lingers; making a fresh container", "err", err)
			ctr = nil
		}
	}
	if ctr == nil {
		if ctr, err = l.fresh(ctx, socket, hash, absent, prep); err != nil {
			return 0, err
		}
	} else {
		prep.stop()
	}
	if rs.StateDir != "" {
		if err := os.RemoveAll(fifoDir); err != nil {
			return 0, fmt.Errorf("remove stale fifo dir: %w", err)
		}
	}
	// From here the container exists; every exit path deletes its task, and
	// the container too unless RECREATE never keeps it for the next start.
	code, err := l.runTask(ctx, ctr, fifoDir)
	if !l.keeps() || err != nil {
		if cerr := l.teardown(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("remove container %s: %w", rs.ContainerID, cerr))
		}
	}
	if rs.StateDir != "" {
		if rerr := os.RemoveAll(fifoDir); rerr != nil {
			err = errors.Join(err, rerr)
		}
		_ = syscall.Rmdir(filepath.Dir(fifoDir)) // fails while other leaves use it
	}
	return code, err
}

// fresh removes whatever a previous leaf left under the service's container
// id and creates a new container and snapshot. absent says the container
// was just looked up and not found.
func (l *leaf) fresh(ctx context.Context, socket, hash string, absent bool, prep *preparation) (client.Container, error) {
	rs := l.rs
	// Idempotent start: whatever a previous leaf left goes first, including a
	// half-made shim the daemon is still cleaning up (it would race the new
	// task for the same bundle dir).
	// A shim can only be left behind with its container (the container is
	// created before its task, and deleted after it), so the process scan for
	// one runs only when a stale container was found: N leaves starting at once
	// would otherwise each read every process's command line.
	ls := l.startLease(ctx)
	keep := crd.KeepLease(ls.id)
	tctx, cancel := l.cleanupCtx()
	stale := false
	var err error
	if absent {
		err = crd.TeardownAbsent(tctx, l.client(), rs.ContainerID, rs.Service.Name, l.snapshotter, keep)
	} else {
		stale, err = crd.TeardownFound(tctx, l.client(), rs.ContainerID, rs.Service.Name, l.snapshotter, keep)
	}
	cancel()
	if err != nil {
		prep.stop()
		l.drop(ls)
		return nil, fmt.Errorf("remove stale container %s: %w", rs.ContainerID, err)
	}
	mine := func(id string) bool { return id == rs.ContainerID }
	if stale {
		if err := crd.WaitShims(ctx, socket, rs.Namespace, mine); err != nil {
			l.log.Warn("ending a shim the daemon lost track of", "err", err)
			if err := crd.ReapOrphanShims(l.bg(), socket, rs.Namespace, mine); err != nil {
				prep.stop()
				l.drop(ls)
				return nil, fmt.Errorf("stale container %s: %w", rs.ContainerID, err)
			}
		}
	}
	ctr, err := l.create(ctx, hash, prep, ls)
	if err != nil {
		if cerr := l.teardown(); cerr != nil {
			l.log.Warn("cleanup after failed create", "err", cerr)
		}
		return nil, err
	}
	return ctr, nil
}

func (l *leaf) teardown() error {
	ctx, cancel := l.cleanupCtx()
	defer cancel()
	return crd.Teardown(ctx, l.client(), l.rs.ContainerID, l.rs.Service.Name, l.snapshotter)
}

// create gets the image and creates container + snapshot under the labeled,
// expiring lease ls, released once the container (which then holds its
// snapshot and image) exists. prep has looked the image up meanwhile; only
// when it was not ready is it got here, under the lease.
func (l *leaf) create(ctx context.Context, hash string, prep *preparation, ls *leaseStart) (client.Container, error) {
	rs := l.rs
	labels := labelsOf(rs)
	lctx, release, err := ls.wait()
	if err != nil {
		prep.stop()
		return nil, err
	}
	created := false
	defer func() {
		if !created {
			l.releaseLease(release)
			return
		}
		// The container now holds its snapshot and image; the lease's
		// deletion (one more metadata commit, serialized with every other
		// leaf's) need not delay the task's create.
		l.releasing.Add(1)
		go func() {
			defer l.releasing.Done()
			l.releaseLease(release)
		}()
	}()

	p := prep.wait()
	img, sopts := p.img, p.sopts
	if p.err != nil {
		return nil, p.err
	}
	if !p.ok {
		if img, err = l.image(lctx, l.getter()); err != nil {
			return nil, err
		}
		if sopts, err = l.specFor(lctx, img); err != nil {
			return nil, err
		}
	}
	copts := []client.NewContainerOpts{
		client.WithImage(img),
		client.WithSnapshotter(l.snapshotter),
		// The snapshot must exist before the spec: WithImageConfig resolves
		// the image's USER from the snapshot's /etc/passwd.
		client.WithNewSnapshot(rs.ContainerID, img),
		client.WithContainerLabels(withLabel(labels, LabelSpecHash, hash)),
		client.WithNewSpec(sopts...),
	}
	if rs.OCIRuntime != "" {
		// The runc shim runs any runc-compatible binary (crun, runsc) named here.
		copts = append(copts, client.WithRuntime(plugins.RuntimeRuncV2, &runcoptions.Options{BinaryName: rs.OCIRuntime}))
	}
	ctr, err := l.client().NewContainer(lctx, rs.ContainerID, copts...)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", rs.ContainerID, err)
	}
	created = true
	return ctr, nil
}

// image returns the service's image, unpacked. An image already present and
// unpacked is used without the grove's image lock, so concurrent starts do
// not queue behind each other; only an import, pull or unpack takes the lock.
func (l *leaf) image(ctx context.Context, g *imageGetter) (client.Image, error) {
	if img, ok := g.ready(ctx, l.rs.Service.Image); ok {
		return img, nil
	}
	unlock, err := lockImages(ctx, l.rs.StateDir, l.rs.Namespace)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return g.get(ctx, l.rs.Service.Image)
}

// runTask starts the task and waits for it, stopping it when ctx ends.
func (l *leaf) runTask(ctx context.Context, ctr client.Container, fifoDir string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("cancelled before start: %w", err)
	}
	fwd, err := listen(l.rs.Service.Publish, l.log)
	if err != nil {
		return 0, err
	}
	defer fwd.close()

	ioOpts := []cio.Opt{cio.WithStreams(nil, l.opts.Stdout, l.opts.Stderr)}
	if l.rs.StateDir != "" {
		if err := os.MkdirAll(fifoDir, 0o700); err != nil { // parents too: <state>/fifo is 0700
			return 0, fmt.Errorf("create fifo dir: %w", err)
		}
		ioOpts = append(ioOpts, cio.WithFIFODir(fifoDir))
	}
	bg := l.bg()
	task, err := ctr.NewTask(bg, cio.NewCreator(ioOpts...))
	if err != nil {
		return 0, fmt.Errorf("create task %s: %w", ctr.ID(), err)
	}
	// The task is followed across containerd restarts (reconnect.go).
	h := l.hold(ctr, task)
	defer h.delete()
	if err := h.watch(bg); err != nil {
		return 0, fmt.Errorf("wait task %s: %w", ctr.ID(), err)
	}
	if err := task.Start(bg); err != nil {
		return 0, fmt.Errorf("start task %s: %w", ctr.ID(), err)
	}
	fwd.serve()
	l.log.Info("container started", "pid", task.Pid())
	// ctx, not bg: a stop request ends the wait for a known status.
	running := l.notifyRunning(ctx, task)
	hctx, hcancel := context.WithCancel(bg)
	hdone := make(chan struct{})
	if running && l.wantsHealth() {
		go func() { defer close(hdone); l.healthLoop(hctx, h, fifoDir) }()
	} else {
		close(hdone)
	}
	// No check may run while the task is stopped or deleted.
	endHealth := func() {
		hcancel()
		<-hdone
	}
	defer endHealth()

	select {
	case st := <-h.Exits():
		endHealth()
		return exitCode(st)
	case <-ctx.Done():
	}
	endHealth()
	return l.stop(h)
}

// notifyRunning tells the supervisor (sd_notify, when NOTIFY_SOCKET is set)
// that the service is up once containerd reports the task RUNNING, with the
// task's host pid as MAINPID. A task that already stopped is not announced:
// its exit follows. An unknown status is asked again: containerd reports
// one when the shim did not answer within its task state timeout (2 s),
// which a loaded machine reaches with the task running.
func (l *leaf) notifyRunning(ctx context.Context, task client.Task) bool {
	wait := statusRetry
	for {
		st, err := task.Status(ctx)
		switch {
		case err != nil:
			l.log.Warn("task status", "err", err)
			return false
		case st.Status == client.Running:
			l.notify(fmt.Sprintf("READY=1\nMAINPID=%d", task.Pid()))
			return true
		case st.Status == client.Stopped:
			l.log.Info("task not running after start", "status", st.Status)
			return false
		}
		l.log.Info("task status not known yet; asking again", "status", st.Status, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		wait = min(2*wait, maxStatusRetry)
	}
}

// statusRetry and maxStatusRetry pace notifyRunning's questions.
const (
	statusRetry    = 100 * time.Millisecond
	maxStatusRetry = 2 * time.Second
)

// stopGraceFor is how long the leaf waits after SIGTERM: derived from the run
// spec's service, which plant takes from the Cuttings row.
func stopGraceFor(rs *crd.RunSpec) time.Duration { return stopGrace(rs.Service.Timeouts.StopTimeout()) }

// stop sends SIGTERM to the task's init, waits the grace period, then
// SIGKILLs every process in the container.
func (l *leaf) stop(h *taskHold) (int, error) {
	grace := stopGraceFor(l.rs)
	ctx, cancel := l.cleanupCtx()
	defer cancel()
	l.log.Info("stopping container", "grace", grace)
	if err := h.kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		l.log.Warn("SIGTERM task", "err", err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case st := <-h.Exits():
		return exitCode(st)
	case <-timer.C:
	}
	l.log.Warn("container ignored SIGTERM; sending SIGKILL to all its processes", "grace", grace)
	if err := h.kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return 0, fmt.Errorf("SIGKILL task: %w", err)
	}
	select {
	case st := <-h.Exits():
		return exitCode(st)
	case <-time.After(killWait):
		return 0, fmt.Errorf("task did not exit %s after SIGKILL", killWait)
	}
}

// stopGrace leaves room inside TIMEOUT_STOP for the SIGKILL and the deletes
// (about a second under load), because the supervisor's own TIMEOUT_STOP ends
// with a SIGKILL of this leaf; a leaf killed mid-delete leaves the rest to
// Sweep or to the next start.
func stopGrace(timeout time.Duration) time.Duration {
	margin := min(timeout/3, 3*time.Second)
	return timeout - margin
}

// labelsOf are the labels of a service's container, lease and images.
func labelsOf(rs *crd.RunSpec) map[string]string { return crd.Labels(rs.Namespace, rs.Service.Name) }

func exitCode(st client.ExitStatus) (int, error) {
	code, _, err := st.Result()
	if err != nil {
		return 0, fmt.Errorf("task exit status: %w", err)
	}
	return int(code), nil
}
