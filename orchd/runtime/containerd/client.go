package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc"
)

// Addresses, names and labels shared by the leaf and the runtime.
const (
	// EnvSocket names the variable that selects the containerd socket.
	EnvSocket = "ORCHD_CONTAINERD_SOCKET"
	// EnvOCIRuntime names the runc-compatible binary (runc, crun, runsc or a
	// path) containerd's runc shim runs a service's container with.
	EnvOCIRuntime = "ORCHD_OCI_RUNTIME"
	// DefaultSocket is containerd's standard address.
	DefaultSocket = "/run/containerd/containerd.sock"
	// DefaultSnapshotter unpacks layers; overlayfs works on ext4, xfs and tmpfs.
	DefaultSnapshotter = "overlayfs"

	// LabelNamespace and LabelService mark every container, lease and image
	// orchd creates, so Sweep can find what a killed leaf left.
	LabelNamespace = "orchd.namespace"
	LabelService   = "orchd.service"
)

// ResolveSocket picks the socket: explicit, else $ORCHD_CONTAINERD_SOCKET, else the default.
func ResolveSocket(explicit string) string { return ResolveSocketEnv(explicit, os.Getenv) }

// ResolveSocketEnv is ResolveSocket reading the variable through getenv (a
// leaf's environment, which the agent runs it with).
func ResolveSocketEnv(explicit string, getenv func(string) string) string {
	if explicit != "" {
		return explicit
	}
	if s := getenv(EnvSocket); s != "" {
		return s
	}
	return DefaultSocket
}

// ContainerID is the id of a service's container: <namespace>-<service>.
func ContainerID(namespace, service string) string { return namespace + "-" + service }

// Labels are the labels put on a service's container, lease and images.
func Labels(namespace, service string) map[string]string {
	return map[string]string{LabelNamespace: namespace, LabelService: service}
}

// Connect dials containerd and checks that it serves, within timeout.
func Connect(ctx context.Context, socket, namespace string, timeout time.Duration) (*client.Client, error) {
	c, err := Dial(socket, namespace, timeout)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, err := c.IsServing(cctx)
	if err != nil || !ok {
		c.Close()
		if err == nil {
			err = errors.New("not serving")
		}
		return nil, fmt.Errorf("containerd at %s is not serving: %w\n%s", socket, err, startHint(socket))
	}
	return c, nil
}

// Dial is Connect without the health round trip: the connection is made by
// the first call, which fails as IsServing would if the daemon is away. A
// leaf dials: grow has checked the daemon before starting it, and at N
// services starting at once the round trip is N more calls queued in
// containerd for nothing.
func Dial(socket, namespace string, timeout time.Duration) (*client.Client, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, fmt.Errorf("containerd socket %s: %w\n%s", socket, err, startHint(socket))
	}
	dial, err := client.New(socket, client.WithDefaultNamespace(namespace), client.WithTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w\n%s", socket, err, startHint(socket))
	}
	conn, ok := dial.Conn().(*grpc.ClientConn)
	if !ok {
		return dial, nil
	}
	// The same connection, with image blobs read once (blobCache).
	c, err := client.NewWithConn(conn, client.WithDefaultNamespace(namespace),
		client.WithServices(client.WithContentStore(newBlobCache(dial.ContentStore()))))
	if err != nil {
		dial.Close()
		return nil, fmt.Errorf("connect to containerd at %s: %w", socket, err)
	}
	return c, nil
}

// Unreachable adds what to do to err when it says the daemon at socket
// could not be reached (a dialled client's first call).
func Unreachable(err error, socket string) error {
	if err == nil || !errdefs.IsUnavailable(err) {
		return err
	}
	return fmt.Errorf("containerd at %s is not serving: %w\n%s", socket, err, startHint(socket))
}

func startHint(socket string) string {
	return fmt.Sprintf("start containerd first: `orchd-harness daemon` (a private daemon; export %s=<its socket>), "+
		"or the system one with `systemctl start containerd` (no systemd: `containerd &`); "+
		"or point orchd at a running daemon with --address, `address` in .orchrc, %s or CONTAINERD_ADDRESS (now: %s)", EnvSocket, EnvSocket, socket)
}

// Teardown removes a container and everything hanging off it: its task (SIGKILL
// to all processes, then delete), the container with its snapshot, a snapshot
// left under the same key, and the leases labeled for service. Missing objects
// are not errors, so Teardown is safe to call on a clean namespace.
func Teardown(ctx context.Context, c *client.Client, id, service, snapshotter string) error {
	_, err := TeardownFound(ctx, c, id, service, snapshotter)
	return err
}

// TeardownOpt adjusts a teardown.
type TeardownOpt func(*teardownOpts)

type teardownOpts struct {
	keepLease string
}

// KeepLease spares the lease id from the removal of the service's leases: a
// start creates its own lease while its clean-up runs.
func KeepLease(id string) TeardownOpt { return func(o *teardownOpts) { o.keepLease = id } }

// TeardownFound is Teardown that also reports whether the container existed.
func TeardownFound(ctx context.Context, c *client.Client, id, service, snapshotter string, opts ...TeardownOpt) (found bool, _ error) {
	return teardown(ctx, c, id, service, snapshotter, true, opts)
}

// TeardownAbsent is Teardown for a container the caller has just found
// absent: only a snapshot left under its key and the service's leases go.
// It spares a leaf's start a second container lookup.
func TeardownAbsent(ctx context.Context, c *client.Client, id, service, snapshotter string, opts ...TeardownOpt) error {
	_, err := teardown(ctx, c, id, service, snapshotter, false, opts)
	return err
}

func teardown(ctx context.Context, c *client.Client, id, service, snapshotter string, lookup bool, opts []TeardownOpt) (found bool, _ error) {
	var o teardownOpts
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	if snapshotter == "" {
		snapshotter = DefaultSnapshotter
	}
	// The service's leases are independent of the container and snapshot:
	// look them up alongside (a leaf's start pays this teardown too).
	leaseErr := make(chan error, 1)
	go func() {
		if service == "" {
			leaseErr <- nil
			return
		}
		ns, _ := namespaces.Namespace(ctx)
		leaseErr <- deleteLeasesWhere(ctx, c, fmt.Sprintf("labels.%q==%q,labels.%q==%q", LabelNamespace, ns, LabelService, service),
			func(l leases.Lease) bool { return l.ID != o.keepLease })
	}()
	var (
		ctr client.Container
		err error = errdefs.ErrNotFound
	)
	if lookup {
		ctr, err = c.LoadContainer(ctx, id)
	}
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		errs = append(errs, fmt.Errorf("load container %s: %w", id, err))
	default:
		found = true
		if err := KillTask(ctx, c, ctr); err != nil {
			errs = append(errs, err)
		}
		if info, ierr := ctr.Info(ctx); ierr == nil && info.Snapshotter != "" {
			snapshotter = info.Snapshotter
		}
		if err := ctr.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete container %s: %w", id, err))
		}
	}
	// Stat first: Remove takes the metadata store's write lock even for a
	// missing key, and N leaves starting at once queue behind each other's
	// writes there; Stat is a read.
	sn := c.SnapshotService(snapshotter)
	if _, err := sn.Stat(ctx, id); err == nil {
		if err := sn.Remove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove snapshot %s: %w", id, err))
		}
	} else if !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("stat snapshot %s: %w", id, err))
	}
	if err := <-leaseErr; err != nil {
		errs = append(errs, err)
	}
	return found, errors.Join(errs...)
}

// KillTask SIGKILLs every process of the container's task and deletes it.
func KillTask(ctx context.Context, c *client.Client, ctr client.Container) error {
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load task %s: %w", ctr.ID(), err)
	}
	// WithProcessKill kills the init (and, via the shim, the rest of the
	// cgroup) and waits for the exit before deleting.
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		slog.Debug("kill stale task", "id", ctr.ID(), "err", err)
	}
	if err := DeleteTask(ctx, c, task); err != nil {
		return fmt.Errorf("delete task %s: %w", ctr.ID(), err)
	}
	return nil
}

// DeleteProcess deletes a task or an exec'd process, killing it first while
// it runs. One that has exited is deleted without the kill: runc answers a
// kill of a stopped container "not running", which the runc shim maps to
// not-found, but gVisor's runsc answers "sandbox is not running", which the
// shim passes on as an unknown error, and the delete would fail.
func DeleteProcess(ctx context.Context, p client.Process) (*client.ExitStatus, error) {
	if status(ctx, p) == client.Stopped {
		return p.Delete(ctx)
	}
	st, err := p.Delete(ctx, client.WithProcessKill)
	if err == nil || errdefs.IsNotFound(err) {
		return st, err
	}
	// It exited between the status and the kill, or is exiting: a runsc
	// sandbox on its way out refuses the kill ("connecting to control
	// server ... connection refused"). Its exit is waited for, bounded.
	wctx, cancel := context.WithTimeout(ctx, exitGrace)
	defer cancel()
	if exitC, werr := p.Wait(wctx); werr == nil {
		select {
		case <-exitC:
		case <-wctx.Done():
		}
	}
	if status(ctx, p) == client.Stopped {
		return p.Delete(ctx)
	}
	return st, err
}

// exitGrace bounds the wait for a process whose kill failed to end on its own.
const exitGrace = 5 * time.Second

// DeleteTask is DeleteProcess for a container's task, plus a task that was
// created and never started under runsc: runsc refuses to signal it ("in
// state created") and the client refuses to delete a created task that has
// a pid, so it is deleted through the task service, whose runc shim then
// deletes the created container (ending its init, as for runc). A task the
// runtime no longer has is deleted: crun answers the delete of a container it
// already removed "container not created", which the shim passes on as not
// found (runc's "does not exist" the shim swallows itself).
func DeleteTask(ctx context.Context, c *client.Client, t client.Task) error {
	_, err := DeleteProcess(ctx, t)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err == nil || status(ctx, t) != client.Created {
		return err
	}
	if _, derr := c.TaskService().Delete(ctx, &tasksapi.DeleteTaskRequest{ContainerID: t.ID()}); derr != nil && !errdefs.IsNotFound(errgrpc.ToNative(derr)) {
		return errors.Join(err, fmt.Errorf("delete created task %s: %w", t.ID(), derr))
	}
	return nil
}

func status(ctx context.Context, p client.Process) client.ProcessStatus {
	st, err := p.Status(ctx)
	if err != nil {
		return client.Unknown
	}
	return st.Status
}

// deleteLeasesOf deletes, with one list, the leases labeled for namespace ns
// whose service want selects.
func deleteLeasesOf(ctx context.Context, c *client.Client, ns string, want func(service string) bool) error {
	return deleteLeasesWhere(ctx, c, fmt.Sprintf("labels.%q==%q", LabelNamespace, ns),
		func(l leases.Lease) bool { return want(l.Labels[LabelService]) })
}

func deleteLeasesWhere(ctx context.Context, c *client.Client, filter string, match func(leases.Lease) bool) error {
	ls := c.LeasesService()
	list, err := ls.List(ctx, filter)
	if err != nil {
		return fmt.Errorf("list leases %s: %w", filter, err)
	}
	var errs []error
	for _, l := range list {
		if !match(l) {
			continue
		}
		if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete lease %s: %w", l.ID, err))
		}
	}
	return errors.Join(errs...)
}

// hasPrefix reports whether id belongs to namespace ns (<ns>-...).
func hasPrefix(id, ns string) bool { return strings.HasPrefix(id, ns+"-") }
