// Package containerd runs FROM services as containerd containers. Cut turns a
// service into `orchd containerd-run --spec-file F` (the leaf, package leaf,
// owns the container's whole lifecycle); Check, Sweep and Describe talk to the
// daemon from the orchd side.
package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime"
	"github.com/orchd/orchd/orchd/runtime/bare"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
	"github.com/orchd/orchd/orchd/runtime/healthcheck"
	"github.com/orchd/orchd/orchd/spec"
)

// dialTimeout bounds every connect, so a wedged daemon fails grow/fell fast.
const dialTimeout = 5 * time.Second

// Runtime is the containerd runtime.
type Runtime struct {
	// Socket is recorded into run specs; empty = resolved by the leaf at start.
	Socket string
	// OCIRuntime is recorded into run specs: the runc shim's BinaryName
	// (runc, crun, runsc or a path); empty = runc.
	OCIRuntime string
}

var (
	_ runtime.Runtime   = (*Runtime)(nil)
	_ runtime.Checker   = (*Runtime)(nil)
	_ runtime.Sweeper   = (*Runtime)(nil)
	_ runtime.Describer = (*Runtime)(nil)
)

// New returns the runtime; the socket is taken from $ORCHD_CONTAINERD_SOCKET at
// sow time, so cuttings keep pointing at the daemon they were computed for.
func New() *Runtime {
	return &Runtime{Socket: os.Getenv(EnvSocket), OCIRuntime: os.Getenv(EnvOCIRuntime)}
}

// Name implements runtime.Runtime.
func (*Runtime) Name() string { return "containerd" }

// Cut implements runtime.Runtime. RUN services run as host processes exactly
// as under the bare runtime; FROM services run through `orchd containerd-run`,
// whose spec (with ENV values) goes to a 0600 file rather than the command line.
func (r *Runtime) Cut(svc spec.Service, env contract.Env) (contract.Cutting, error) {
	if svc.Mode != spec.ModeContainer {
		return bare.New().Cut(svc, env)
	}
	if env.Namespace == "" || env.StateDir == "" || env.Orchd == "" {
		return contract.Cutting{}, fmt.Errorf("containerd runtime: namespace, state dir and orchd path are required")
	}
	if err := checkPublish(svc.Publish); err != nil {
		return contract.Cutting{}, err
	}
	label := contract.Label(env.Namespace, svc.Name)
	layout := contract.Layout{StateDir: env.StateDir}
	rs := RunSpec{
		Version:     RunSpecVersion,
		Namespace:   env.Namespace,
		ContainerID: ContainerID(env.Namespace, svc.Name),
		Socket:      r.Socket,
		OCIRuntime:  r.OCIRuntime,
		Service:     svc,
		ProjectDir:  env.ProjectDir,
		DataDir:     env.DataDir,
		StateDir:    env.StateDir,
		Label:       label,
		EnvFiles:    env.ProjectPaths(svc.EnvFiles),
	}
	file := layout.CrunFile(label)
	// The service travels once, in the row; plant puts it into the file.
	f, err := contract.ServiceFile(file, 0o600, rs)
	if err != nil {
		return contract.Cutting{}, err
	}
	c := contract.Cutting{Service: svc}
	c.Exec.Start = []string{env.Orchd, "containerd-run", "--spec-file", file}
	// The leaf sends READY=1 once containerd reports the task running.
	c.Exec.Notify = true
	// Its task has a PID namespace of its own: no init between it and its
	// supervisor.
	c.Exec.Leaf = true
	// orchd's supervisors run it through the grove's agent (package agent).
	c.Exec.Agent = true
	// A command HEALTHCHECK runs inside the container, from the leaf.
	if healthcheck.IsCommand(svc.Healthcheck) && !svc.Oneshot {
		c.Exec.NotifyHealth = true
	}
	c.Files = []contract.File{f}
	return c, nil
}

// Check implements runtime.Checker: the daemon must serve before grow starts anything.
func (r *Runtime) Check(ctx context.Context, env contract.Env) error {
	c, err := Connect(ctx, ResolveSocket(r.Socket), env.Namespace, dialTimeout)
	if err != nil {
		return fmt.Errorf("containerd runtime: %w", err)
	}
	return c.Close()
}

// drainTimeout bounds the wait for the agent's services of the namespace:
// a stop is TIMEOUT_STOP and a teardown, and the supervisors (which waited
// for their leaves) are already gone.
const drainTimeout = time.Minute

// sweepers bounds the containers Sweep tears down at once: each blocks a
// thread of containerd's in unmount and fsync, and its threads never shrink.
const sweepers = 8

// Sweep implements runtime.Sweeper. After every supervisor is gone it removes
// what a killed leaf may have left: tasks, containers and snapshots of this
// namespace (containers labeled orchd.namespace, ids <ns>-<service>), the
// leases and images orchd created (with their unpacked snapshots), and the
// leaves' FIFO dirs. services limits the sweep; empty means every service of
// the namespace. Images that were in the store before orchd ran carry no orchd
// label and stay.
func (r *Runtime) Sweep(ctx context.Context, env contract.Env, services []string) error {
	// The agent may still be stopping a service whose leaf was killed; the
	// sweep comes after it, and so does its exit when nothing else keeps it.
	dctx, cancel := context.WithTimeout(ctx, drainTimeout)
	err := agent.Drain(dctx, env.StateDir, env.Namespace, services)
	cancel()
	if err != nil {
		slog.Warn("sweep: the containerd agent did not finish in time; sweeping anyway", "err", err)
	}
	socket := ResolveSocket(r.Socket)
	if _, err := os.Stat(socket); errors.Is(err, os.ErrNotExist) {
		// No daemon, nothing it could hold; the FIFO dirs are still ours.
		return sweepFIFOs(env, services)
	}
	c, err := Connect(ctx, socket, env.Namespace, dialTimeout)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, env.Namespace)
	want := func(svc string) bool { return len(services) == 0 || slices.Contains(services, svc) }

	var errs []error
	ctrs, err := c.Containers(ctx, fmt.Sprintf("labels.%q==%q", LabelNamespace, env.Namespace))
	if err != nil {
		return fmt.Errorf("sweep: list containers: %w", err)
	}
	// Every container (RECREATE never keeps each service's) is torn down at
	// once, as N separate clients would: one after another, fell paid N
	// chains of round trips and metadata commits in a row. The list already
	// carries the labels, and the leases go below with one list for all.
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	sem := make(chan struct{}, sweepers)
	for _, ctr := range ctrs {
		info, err := ctr.Info(ctx, client.WithoutRefreshedMetadata)
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("sweep: labels of %s: %w", ctr.ID(), err))
			mu.Unlock()
			continue
		}
		if !want(info.Labels[LabelService]) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := Teardown(ctx, c, ctr.ID(), "", info.Snapshotter); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("sweep: %w", err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// A leaf killed between snapshot and container creation leaves a bare
	// snapshot keyed by the container id (one walk finds them all), and a
	// killed leaf its lease (one list: a per-service Teardown would cost
	// three round trips per service, which fell pays at every N).
	if err := sweepSnapshots(ctx, c, env.Namespace, services); err != nil {
		errs = append(errs, err)
	}
	ours := func(id string) bool {
		return hasPrefix(id, env.Namespace) && want(strings.TrimPrefix(id, env.Namespace+"-"))
	}
	if err := WaitShims(ctx, socket, env.Namespace, ours); err != nil {
		// Still there after the daemon's own cleanup had its time: orphans.
		slog.Warn("sweep: ending shims the daemon lost track of", "err", err)
		if err := ReapOrphanShims(ctx, socket, env.Namespace, ours); err != nil {
			errs = append(errs, fmt.Errorf("sweep: %w", err))
		}
	}
	// A leaf killed mid task-create can leave runc's container cgroups and
	// state behind even when containerd cleaned up the shim (its "delete" of a
	// half-made container fails). rmdir only takes empty cgroups, and runc's
	// state goes only for an id with no cgroup left, so nothing live is touched.
	removeNamespaceCgroupsOf(CgroupRoot, env.Namespace, ours)
	removeStaleRuncState(CgroupRoot, env.Namespace, ours)
	if err := deleteLeasesOf(ctx, c, env.Namespace, want); err != nil {
		errs = append(errs, fmt.Errorf("sweep: %w", err))
	}
	if err := sweepImages(ctx, c, env.Namespace, want); err != nil {
		errs = append(errs, err)
	}
	if err := sweepFIFOs(env, services); err != nil {
		errs = append(errs, err)
	}
	removeNamespaceCgroups(CgroupRoot, env.Namespace)
	// runc's per-namespace state root, left empty by the shims (rmdir: only if empty).
	_ = syscall.Rmdir(filepath.Join(RuncRoot, env.Namespace))
	return errors.Join(errs...)
}

// CgroupRoot is where the host's cgroup filesystems are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// removeNamespaceCgroupsOf removes the container cgroups /<ns>/<id> that an
// orphan shim's runc container left. Sweep runs after every supervisor and
// leaf of the grove is gone, so a process still in one of our containers'
// cgroups (a `runc init` stranded by a leaf killed mid task-create) is ended
// first, as `runc delete --force` would.
func removeNamespaceCgroupsOf(root, ns string, want func(string) bool) {
	dirs, _ := filepath.Glob(filepath.Join(root, "*", ns, "*"))
	more, _ := filepath.Glob(filepath.Join(root, ns, "*"))
	dirs = append(dirs, more...)
	var ours []string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && want(filepath.Base(d)) {
			ours = append(ours, d)
		}
	}
	for _, d := range ours {
		killCgroupProcs(d)
	}
	for _, d := range ours {
		_ = syscall.Rmdir(d)
	}
}

// killCgroupProcs SIGKILLs every process in cgroup dir d and waits (bounded)
// for the cgroup to empty.
func killCgroupProcs(d string) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil || len(strings.TrimSpace(string(b))) == 0 || time.Now().After(deadline) {
			return
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond) // poll interval while the kernel reaps
	}
}

// runcRoot is where the runc v2 shim keeps runc's state, per namespace.
const runcRoot = "/run/containerd/runc"

// removeStaleRuncState removes runc's state dir of each of our container ids
// whose cgroups are all gone: no process can be left in such a container.
func removeStaleRuncState(cgroupRoot, ns string, want func(string) bool) {
	ents, _ := os.ReadDir(filepath.Join(runcRoot, ns))
	for _, e := range ents {
		id := e.Name()
		if !e.IsDir() || !want(id) {
			continue
		}
		left, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", ns, id))
		if _, err := os.Stat(filepath.Join(cgroupRoot, ns, id)); err == nil {
			left = append(left, filepath.Join(cgroupRoot, ns, id))
		}
		if len(left) > 0 {
			slog.Debug("keep runc state: cgroups remain", "id", id, "cgroups", left)
			continue
		}
		if err := os.RemoveAll(filepath.Join(runcRoot, ns, id)); err != nil {
			slog.Warn("remove stale runc state", "id", id, "err", err)
		}
	}
}

// removeNamespaceCgroups removes the /<ns> parent cgroups runc creates (in
// every v1 hierarchy, or once on v2) for containers at /<ns>/<id>. rmdir only
// succeeds on an empty cgroup, so one still in use stays.
func removeNamespaceCgroups(root, ns string) {
	dirs, _ := filepath.Glob(filepath.Join(root, "*", ns))
	dirs = append(dirs, filepath.Join(root, ns))
	for _, d := range dirs {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			slog.Debug("keep namespace cgroup", "dir", d, "err", err)
		}
	}
}

// sweepSnapshots removes snapshots keyed <ns>-<service> in the default snapshotter.
func sweepSnapshots(ctx context.Context, c *client.Client, ns string, services []string) error {
	sn := c.SnapshotService(DefaultSnapshotter)
	var keys []string
	err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if hasPrefix(info.Name, ns) {
			svc := strings.TrimPrefix(info.Name, ns+"-")
			if len(services) == 0 || slices.Contains(services, svc) {
				keys = append(keys, info.Name)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sweep: walk snapshots: %w", err)
	}
	var errs []error
	for _, k := range keys {
		if err := sn.Remove(ctx, k); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("sweep: remove snapshot %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// sweepImages deletes the images orchd imported or pulled for this namespace,
// then has the daemon collect garbage now, so their content and unpacked
// snapshots are gone when fell returns.
func sweepImages(ctx context.Context, c *client.Client, ns string, want func(string) bool) error {
	is := c.ImageService()
	list, err := is.List(ctx, fmt.Sprintf("labels.%q==%q", LabelNamespace, ns))
	if err != nil {
		return fmt.Errorf("sweep: list images: %w", err)
	}
	var errs []error
	deleted := 0
	for _, img := range list {
		if !want(img.Labels[LabelService]) {
			continue
		}
		if err := is.Delete(ctx, img.Name); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("sweep: delete image %s: %w", img.Name, err))
			continue
		}
		deleted++
	}
	if deleted > 0 {
		if err := SyncGC(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("sweep: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RuncRoot is runc's state root as the runc shims use it (the namespace is
// appended); it is per host, not per daemon.
const RuncRoot = "/run/containerd/runc"

// SyncGC makes the daemon collect garbage now and waits for it: deleting a
// lease with SynchronousDelete collects before returning.
func SyncGC(ctx context.Context, c *client.Client) error {
	ls := c.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID())
	if err != nil {
		return fmt.Errorf("gc: create lease: %w", err)
	}
	if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	return nil
}

func sweepFIFOs(env contract.Env, services []string) error {
	var errs []error
	dirs := []string{}
	if len(services) == 0 {
		m, _ := filepath.Glob(contract.Layout{StateDir: env.StateDir}.FIFODir(contract.Label(env.Namespace, "*")))
		dirs = append(dirs, m...)
	}
	for _, svc := range services {
		dirs = append(dirs, contract.Layout{StateDir: env.StateDir}.FIFODir(contract.Label(env.Namespace, svc)))
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("sweep: remove %s: %w", d, err))
		}
	}
	// The parent goes when no other namespace uses it.
	_ = syscall.Rmdir(contract.Layout{StateDir: env.StateDir}.FIFORoot())
	return errors.Join(errs...)
}

// Describe implements runtime.Describer: the container id and containerd's
// task status per service (absent container = no detail).
func (r *Runtime) Describe(ctx context.Context, env contract.Env, services []string) (map[string]runtime.Detail, error) {
	c, err := Connect(ctx, ResolveSocket(r.Socket), env.Namespace, dialTimeout)
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, env.Namespace)
	out := map[string]runtime.Detail{}
	for _, svc := range services {
		id := ContainerID(env.Namespace, svc)
		ctr, err := c.LoadContainer(ctx, id)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("describe %s: %w", svc, err)
		}
		d := runtime.Detail{ContainerID: id, TaskStatus: "no task"}
		task, err := ctr.Task(ctx, nil)
		switch {
		case errdefs.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("describe %s: task: %w", svc, err)
		default:
			st, err := task.Status(ctx)
			if err != nil {
				return nil, fmt.Errorf("describe %s: task status: %w", svc, err)
			}
			d.TaskStatus = string(st.Status)
		}
		out[svc] = d
	}
	return out, nil
}

// checkPublish refuses what a host-network container cannot honor: with the
// same host and container port nothing is relayed, the program's own socket
// is the published port, and a program listening on every address cannot be
// held to the one PUBLISH names. Ignoring the address would open the port
// wider than the Orchfile says.
func checkPublish(pubs []spec.Publish) error {
	for _, p := range pubs {
		if p.Host != p.Container || p.HostIP == "" {
			continue
		}
		if ip := net.ParseIP(strings.Trim(p.HostIP, "[]")); ip != nil && ip.IsUnspecified() {
			continue
		}
		return fmt.Errorf("PUBLISH %s:%d:%d: the container shares the host network, so port %d is open on whatever address the program listens on, not only %s; "+
			"publish another host port (PUBLISH %s:HOST:%d, relayed from %s only) or drop the address (PUBLISH %d:%d)",
			p.HostIP, p.Host, p.Container, p.Container, p.HostIP, p.HostIP, p.Container, p.HostIP, p.Host, p.Container)
	}
	return nil
}
