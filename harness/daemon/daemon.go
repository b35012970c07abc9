// Package daemon runs a private containerd (own root, state, sockets and
// config, CRI off) for tests and the harness, and tears it down leaving no
// process, mount or directory behind. It never touches /run/containerd's
// daemon socket or /var/lib/containerd.
package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/orchd/procfs"

	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

// Timeouts for the lifecycle; generous because 2 cores run several daemons.
const (
	ReadyTimeout = 60 * time.Second
	StopGrace    = 10 * time.Second
	pollEvery    = 50 * time.Millisecond
)

// maxSocketPath is sun_path's size minus the terminating NUL, minus ".ttrpc".
const maxSocketPath = 107 - len(".ttrpc")

// Options configure Start.
type Options struct {
	// Dir holds everything (root, state, sockets, config, log); "" = a new
	// short temp dir under /tmp. It is removed by Stop.
	Dir string
	// LogWriter also receives the daemon's log (it always goes to <dir>/containerd.log).
	LogWriter io.Writer
	// Debug turns on debug logging and a debug socket.
	Debug bool
}

// Daemon is a running private containerd.
type Daemon struct {
	tc   *toolchain.Toolchain
	opts Options
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has been waited for
	waitErr error
}

// Start writes a config for tc's containerd, starts it and waits until it
// serves with every plugin the harness needs initialised.
func Start(ctx context.Context, tc *toolchain.Toolchain, opts Options) (*Daemon, error) {
	if tc == nil {
		return nil, errors.New("start containerd: nil toolchain")
	}
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("/tmp", "ocd-"); err != nil {
			return nil, fmt.Errorf("start containerd: %w", err)
		}
	} else {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("start containerd: %w", err)
		}
		dir = abs
	}
	d := &Daemon{tc: tc, opts: opts, dir: dir}
	if len(d.Address()) > maxSocketPath {
		return nil, fmt.Errorf("start containerd: socket path %s is longer than %d bytes; use a shorter --dir", d.Address(), maxSocketPath)
	}
	// Checked before writing anything: the dir belongs to a live daemon.
	if err := refuseLiveSocket(d.Address()); err != nil {
		return nil, err
	}
	for _, p := range []string{dir, d.Root(), d.State()} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("start containerd: %w", err)
		}
	}
	if err := os.WriteFile(d.ConfigPath(), []byte(d.config()), 0o600); err != nil {
		return nil, fmt.Errorf("start containerd: write config: %w", err)
	}
	if err := d.start(ctx); err != nil {
		_ = d.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return d, nil
}

// Address is the grpc socket path.
func (d *Daemon) Address() string { return filepath.Join(d.dir, "c.sock") }

// TTRPCAddress is the ttrpc socket path.
func (d *Daemon) TTRPCAddress() string { return d.Address() + ".ttrpc" }

// Root is containerd's persistent root.
func (d *Daemon) Root() string { return filepath.Join(d.dir, "root") }

// State is containerd's state dir.
func (d *Daemon) State() string { return filepath.Join(d.dir, "state") }

// Dir is the daemon's work dir.
func (d *Daemon) Dir() string { return d.dir }

// ConfigPath is the generated config.toml.
func (d *Daemon) ConfigPath() string { return filepath.Join(d.dir, "config.toml") }

// LogPath is where the daemon logs.
func (d *Daemon) LogPath() string { return filepath.Join(d.dir, "containerd.log") }

// Toolchain is the toolchain the daemon runs.
func (d *Daemon) Toolchain() *toolchain.Toolchain { return d.tc }

// Pid is the daemon's pid, 0 when not running.
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil || d.exitedLocked() {
		return 0
	}
	return d.cmd.Process.Pid
}

func (d *Daemon) exitedLocked() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// Client connects a new containerd client (caller closes it).
func (d *Daemon) Client(opts ...client.Opt) (*client.Client, error) {
	c, err := client.New(d.Address(), opts...)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", d.Address(), err)
	}
	return c, nil
}

// LogTail returns the last n lines of the daemon log.
func (d *Daemon) LogTail(n int) string {
	raw, err := os.ReadFile(d.LogPath())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Plugins the harness cannot work without, by containerd major version.
var requiredPlugins = map[int][]string{
	1: {
		"io.containerd.content.v1.content",
		"io.containerd.snapshotter.v1.overlayfs",
		"io.containerd.metadata.v1.bolt",
		"io.containerd.runtime.v2.task",
		"io.containerd.service.v1.tasks-service",
		"io.containerd.service.v1.images-service",
		"io.containerd.service.v1.leases-service",
		"io.containerd.grpc.v1.introspection",
	},
	2: {
		"io.containerd.content.v1.content",
		"io.containerd.snapshotter.v1.overlayfs",
		"io.containerd.metadata.v1.bolt",
		"io.containerd.runtime.v2.task",
		"io.containerd.service.v1.tasks-service",
		"io.containerd.service.v1.images-service",
		"io.containerd.grpc.v1.leases",
		"io.containerd.transfer.v1.local",
		"io.containerd.grpc.v1.transfer",
		"io.containerd.grpc.v1.introspection",
	},
}

// disabledPlugins are CRI (no Kubernetes here) and plugins that only fail
// noisily on this kind of host.
var disabledPlugins = map[int][]string{
	1: {
		"io.containerd.grpc.v1.cri",
		"io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.zfs",
		"io.containerd.snapshotter.v1.aufs",
		"io.containerd.snapshotter.v1.devmapper",
		"io.containerd.tracing.processor.v1.otlp",
		"io.containerd.internal.v1.tracing",
	},
	2: {
		"io.containerd.grpc.v1.cri",
		"io.containerd.cri.v1.images",
		"io.containerd.cri.v1.runtime",
		"io.containerd.podsandbox.controller.v1.podsandbox",
		"io.containerd.snapshotter.v1.btrfs",
		"io.containerd.snapshotter.v1.zfs",
		"io.containerd.snapshotter.v1.aufs",
		"io.containerd.snapshotter.v1.devmapper",
		"io.containerd.snapshotter.v1.erofs",
		"io.containerd.differ.v1.erofs",
		"io.containerd.tracing.processor.v1.otlp",
		"io.containerd.internal.v1.tracing",
		"io.containerd.nri.v1.nri",
	},
}

func (d *Daemon) major() int {
	if d.tc.Major() >= 2 {
		return 2
	}
	return 1
}

// config renders config.toml: version 2 for containerd 1.x, version 3 for 2.x.
func (d *Daemon) config() string {
	m := d.major()
	var b bytes.Buffer
	fmt.Fprintf(&b, "version = %d\n", m+1)
	fmt.Fprintf(&b, "root = %q\nstate = %q\n", d.Root(), d.State())
	var quoted []string
	for _, p := range disabledPlugins[m] {
		quoted = append(quoted, fmt.Sprintf("%q", p))
	}
	fmt.Fprintf(&b, "disabled_plugins = [%s]\n\n", strings.Join(quoted, ", "))
	fmt.Fprintf(&b, "[grpc]\n  address = %q\n\n", d.Address())
	fmt.Fprintf(&b, "[ttrpc]\n  address = %q\n\n", d.TTRPCAddress())
	level := "info"
	if d.opts.Debug {
		level = "debug"
		fmt.Fprintf(&b, "[debug]\n  address = %q\n  level = %q\n\n", d.Address()+".debug", level)
	} else {
		fmt.Fprintf(&b, "[debug]\n  level = %q\n\n", level)
	}
	// No metrics listener and no OOM-score games with the test process.
	fmt.Fprintf(&b, "[metrics]\n  address = \"\"\n")
	return b.String()
}

// start launches the process and waits for readiness.
func (d *Daemon) start(ctx context.Context) error {
	if err := refuseLiveSocket(d.Address()); err != nil {
		return err
	}
	// A stale socket from a killed daemon would make containerd fail to listen.
	_ = os.Remove(d.Address())
	_ = os.Remove(d.TTRPCAddress())
	logf, err := os.OpenFile(d.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start containerd: log: %w", err)
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(d.tc.Containerd.Path, "--config", d.ConfigPath())
	cmd.Dir = d.dir
	cmd.Env = append(envWithout(os.Environ(), "PATH"), "PATH="+d.tc.PathEnv(os.Getenv("PATH")))
	cmd.SysProcAttr = daemonAttr()
	var pw *os.File
	if d.opts.LogWriter != nil {
		// Copy through our own pipe so exec's Wait never blocks on a shim holding stderr.
		pr, w, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("start containerd: pipe: %w", err)
		}
		pw = w
		cmd.Stdout, cmd.Stderr = w, w
		// The copier gets its own handle: the deferred Close below only
		// releases the parent's copy of the file.
		copyTo, err := os.OpenFile(d.LogPath(), os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			pr.Close()
			w.Close()
			return fmt.Errorf("start containerd: log: %w", err)
		}
		go func() {
			defer pr.Close()
			defer copyTo.Close()
			_, _ = io.Copy(io.MultiWriter(copyTo, d.opts.LogWriter), pr)
		}()
	} else {
		cmd.Stdout, cmd.Stderr = logf, logf
	}
	if err := cmd.Start(); err != nil {
		if pw != nil {
			pw.Close()
		}
		return fmt.Errorf("start containerd %s: %w", d.tc.Containerd.Path, err)
	}
	if pw != nil {
		pw.Close()
	}
	exited := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.exited, d.waitErr = cmd, exited, nil
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.waitErr = err
		d.mu.Unlock()
		close(exited)
	}()
	slog.Debug("containerd started", "pid", cmd.Process.Pid, "address", d.Address(), "toolchain", d.tc.Name)
	if err := d.waitReady(ctx, exited); err != nil {
		return fmt.Errorf("containerd %s (%s) not ready: %w\n--- %s (tail) ---\n%s", d.tc.Name, d.Address(), err, d.LogPath(), d.LogTail(30))
	}
	return nil
}

func envWithout(env []string, key string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// refuseLiveSocket fails when something already serves on addr: two daemons
// sharing a root would corrupt each other.
func refuseLiveSocket(addr string) error {
	c, err := net.DialTimeout("unix", addr, time.Second)
	if err != nil {
		return nil
	}
	c.Close()
	return fmt.Errorf("start containerd: %s is already being served by another process", addr)
}

func (d *Daemon) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-exited:
			d.mu.Lock()
			err := d.waitErr
			d.mu.Unlock()
			return fmt.Errorf("containerd exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-tick.C:
		}
		if _, err := os.Stat(d.Address()); err != nil {
			last = err
			continue
		}
		last = d.checkServing(ctx)
		if last == nil {
			return nil
		}
		var pe *pluginError
		if errors.As(last, &pe) {
			return last // plugins are initialised before serving: this will not heal
		}
	}
}

type pluginError struct{ msg string }

func (e *pluginError) Error() string { return e.msg }

func (d *Daemon) checkServing(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.New(d.Address(), client.WithTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	if ok, err := c.IsServing(cctx); err != nil || !ok {
		return fmt.Errorf("not serving: %v", err)
	}
	resp, err := c.IntrospectionService().Plugins(namespaces.WithNamespace(cctx, "default"))
	if err != nil {
		return fmt.Errorf("introspection: %w", err)
	}
	state := map[string]string{}
	for _, p := range resp.Plugins {
		id := p.Type + "." + p.ID
		state[id] = ""
		if p.InitErr != nil {
			state[id] = p.InitErr.Message
		}
	}
	var bad []string
	for _, id := range requiredPlugins[d.major()] {
		msg, ok := state[id]
		switch {
		case !ok:
			bad = append(bad, id+": not loaded")
		case msg != "":
			bad = append(bad, id+": "+msg)
		}
	}
	if len(bad) > 0 {
		return &pluginError{msg: "required plugins failed: " + strings.Join(bad, "; ")}
	}
	return nil
}

// Kill SIGKILLs the daemon only (shims and containers survive), for fault tests.
func (d *Daemon) Kill() error {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return errors.New("kill containerd: not running")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill containerd %d: %w", cmd.Process.Pid, err)
	}
	<-exited
	return nil
}

// Terminate stops the daemon process only, as a service manager does for an
// upgrade: SIGTERM, then SIGKILL after StopGrace. Shims and their containers
// survive; Restart brings the daemon back on the same dirs and sockets.
func (d *Daemon) Terminate() error {
	if d.Pid() == 0 {
		return errors.New("terminate containerd: not running")
	}
	return d.terminate()
}

// Restart starts the daemon again with the same dirs and sockets (after Kill
// or Stop of the process only); containerd reconnects to surviving shims.
func (d *Daemon) Restart(ctx context.Context) error {
	if d.Pid() != 0 {
		return fmt.Errorf("restart containerd: still running as pid %d", d.Pid())
	}
	if _, err := os.Stat(d.ConfigPath()); err != nil {
		return fmt.Errorf("restart containerd: %w", err)
	}
	return d.start(ctx)
}

// Stop kills every task through the API, SIGTERMs the daemon (SIGKILL after
// StopGrace), kills shims left for this socket with their children,
// unmounts everything under root and state, and removes the dir.
func (d *Daemon) Stop(ctx context.Context) error {
	var errs []error
	nss := map[string]bool{}
	if d.Pid() != 0 {
		if err := d.killTasks(ctx, nss); err != nil {
			slog.Debug("stop containerd: kill tasks", "address", d.Address(), "err", err)
		}
		if err := d.terminate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := KillShims(ctx, d.tc.Runc.Path, func(s procfs.Shim) bool {
		if s.Address != d.Address() {
			return false
		}
		nss[s.Namespace] = true
		return true
	}); err != nil {
		errs = append(errs, err)
	}
	if err := procfs.UnmountUnder(d.Root(), d.State()); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(d.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", d.dir, err))
	}
	for ns := range nss {
		RemoveEmptyNamespaceDirs(ns)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop containerd %s: %w", d.Address(), err)
	}
	return nil
}

func (d *Daemon) terminate() error {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(StopGrace):
	}
	slog.Warn("containerd ignored SIGTERM; killing", "pid", cmd.Process.Pid, "grace", StopGrace)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill containerd: %w", err)
	}
	<-exited
	return nil
}

// killTasks SIGKILLs and deletes every task in every namespace so shims exit
// on their own and unmount their rootfs; bounded, best effort.
func (d *Daemon) killTasks(ctx context.Context, seen map[string]bool) error {
	ctx, cancel := context.WithTimeout(ctx, StopGrace)
	defer cancel()
	c, err := d.Client()
	if err != nil {
		return err
	}
	defer c.Close()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss {
		seen[ns] = true
		if err := KillNamespaceTasks(namespaces.WithNamespace(ctx, ns), c); err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
		}
	}
	return errors.Join(errs...)
}

// KillNamespaceTasks SIGKILLs, waits for and deletes every task in ctx's namespace.
func KillNamespaceTasks(ctx context.Context, c *client.Client) error {
	ctrs, err := c.Containers(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, ctr := range ctrs {
		task, err := ctr.Task(ctx, nil)
		if err != nil {
			continue // no task
		}
		wait, werr := task.Wait(ctx)
		if kerr := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); kerr == nil && werr == nil {
			select {
			case <-wait:
			case <-ctx.Done():
			}
		}
		if _, err := task.Delete(ctx, client.WithProcessKill); err != nil {
			errs = append(errs, fmt.Errorf("delete task %s: %w", ctr.ID(), err))
		}
	}
	return errors.Join(errs...)
}

// ShimSocket mirrors containerd's pkg/shim SocketAddress: shims listen on
// /run/containerd/s/<sha256(address/namespace/id[/debug])>.
func ShimSocket(addr, ns, id string, debug bool) string {
	p := filepath.Join(procfs.TrimUnix(addr), ns, id)
	if debug {
		p = filepath.Join(p, "debug")
	}
	return filepath.Join("/run/containerd/s", fmt.Sprintf("%x", sha256.Sum256([]byte(p))))
}

// KillShims removes shims for which match is true: "runc delete --force"
// kills each shim's container and drops its runc state and cgroups, then the
// shim and everything below it is SIGKILLed and its sockets removed. runc ""
// means runc from PATH.
func KillShims(ctx context.Context, runc string, match func(procfs.Shim) bool) error {
	if runc == "" {
		runc = "runc"
	}
	procs, err := procfs.Processes()
	if err != nil {
		return err
	}
	var pids []int
	for _, s := range procfs.Shims(procs) {
		if !match(s) {
			continue
		}
		if s.Namespace != "" && s.ID != "" {
			rctx, cancel := context.WithTimeout(ctx, StopGrace)
			out, err := exec.CommandContext(rctx, runc, "--root", filepath.Join(crd.RuncRoot, s.Namespace), "delete", "--force", s.ID).CombinedOutput()
			cancel()
			if err != nil && !strings.Contains(string(out), "not exist") {
				slog.Debug("runc delete", "namespace", s.Namespace, "id", s.ID, "err", err, "out", string(out))
			}
		}
		pids = append(pids, s.Pid)
		pids = append(pids, procfs.Descendants(procs, s.Pid)...)
		procfs.KillTree(procs, s.Pid)
		for _, debug := range []bool{false, true} {
			_ = os.Remove(ShimSocket(s.Address, s.Namespace, s.ID, debug))
		}
	}
	return procfs.WaitGone(ctx, pids, StopGrace)
}

// RemoveEmptyNamespaceDirs drops the per-namespace dirs runc never removes
// (its state root and the /<ns> cgroup parents) when they are empty; rmdir
// fails on anything still in use, so this cannot hurt a live container.
func RemoveEmptyNamespaceDirs(ns string) {
	if ns == "" || strings.Contains(ns, "/") {
		return
	}
	_ = syscall.Rmdir(filepath.Join(crd.RuncRoot, ns))
	ms, err := procfs.Mounts()
	if err != nil {
		return
	}
	for _, m := range ms {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			_ = syscall.Rmdir(filepath.Join(m.Point, ns))
		}
	}
}
