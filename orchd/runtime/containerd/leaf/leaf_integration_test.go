package leaf_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	cimages "github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/orchd/orchd/fixtures/probe/report"
	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/daemon/daemontest"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/leaks"
	"github.com/orchd/orchd/harness/registry"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/procfs"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/runtime/containerd/leaf"
	"github.com/orchd/orchd/orchd/spec"
)

// fixture is one private daemon plus the fixture images.
type fixture struct {
	tc   *toolchain.Toolchain
	d    *daemon.Daemon
	imgs *images.Set
	reg  *registry.Registry
	bin  string // the orchd binary
	mu   sync.Mutex
	n    int
}

func buildImages(t *testing.T) *images.Set {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	set, err := images.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("build fixture images: %v", err)
	}
	return set
}

func (f *fixture) layout(t *testing.T, name string) images.Layout {
	t.Helper()
	l, err := f.imgs.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// env is one test's orchd environment: its own namespace, state and data dirs.
type env struct {
	f         *fixture
	ns        string
	stateDir  string
	dataDir   string
	projDir   string
	leafLog   *syncBuffer
	leafLogIO *slog.Logger
}

func (f *fixture) env(t *testing.T) *env {
	t.Helper()
	f.mu.Lock()
	f.n++
	ns := fmt.Sprintf("lf%d-%d", os.Getpid()%10000, f.n)
	f.mu.Unlock()
	root := t.TempDir()
	e := &env{f: f, ns: ns, stateDir: filepath.Join(root, "state"), dataDir: filepath.Join(root, "data"), projDir: filepath.Join(root, "proj"), leafLog: &syncBuffer{}}
	for _, d := range []string{e.stateDir, e.dataDir, e.projDir, filepath.Join(e.stateDir, "run")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.leafLogIO = slog.New(slog.NewTextHandler(io.MultiWriter(e.leafLog, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() { e.assertNoLeaks(t) })
	return e
}

func (e *env) runSpec(svc spec.Service) *crd.RunSpec {
	if svc.Mode == "" {
		svc.Mode = spec.ModeContainer
	}
	return &crd.RunSpec{
		Version:     crd.RunSpecVersion,
		Namespace:   e.ns,
		ContainerID: crd.ContainerID(e.ns, svc.Name),
		Socket:      e.f.d.Address(),
		Service:     svc,
		ProjectDir:  e.projDir,
		DataDir:     e.dataDir,
		StateDir:    e.stateDir,
		Label:       contract.Label(e.ns, svc.Name),
		EnvFiles:    svc.EnvFiles,
	}
}

func (e *env) target() leaks.Target {
	return leaks.Target{Address: e.f.d.Address(), Namespace: e.ns, Root: e.f.d.Root(), State: e.f.d.State(), OrchdStateDir: e.stateDir}
}

// assertNoLeaks checks what the leaf itself must have removed (everything but
// the images it fetched, which are a cache, and the container with its own
// snapshot, which RECREATE never keeps for the next start), then sweeps like
// fell does and asserts the namespace is empty.
func (e *env) assertNoLeaks(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := leaks.Inspect(ctx, e.target())
	if err != nil {
		t.Errorf("inspect leaks: %v", err)
		return
	}
	for _, kind := range [][]string{r.Tasks, r.Leases, r.Ingests, r.Shims, r.Processes, r.Mounts, r.Cgroups, r.Files} {
		if len(kind) > 0 {
			t.Errorf("the leaf left objects behind:\n%s", r)
			break
		}
	}
	// FIFO dirs live in orchd's state dir.
	if m, _ := filepath.Glob(filepath.Join(e.stateDir, "fifo", "*")); len(m) > 0 {
		t.Errorf("fifo dirs left: %v", m)
	}
	rt := &crd.Runtime{Socket: e.f.d.Address()}
	if err := rt.Sweep(ctx, contract.Env{ProjectDir: e.projDir, StateDir: e.stateDir, DataDir: e.dataDir, Namespace: e.ns}, nil); err != nil {
		t.Errorf("sweep: %v", err)
	}
	if r, err = leaks.Inspect(ctx, e.target()); err != nil {
		t.Errorf("inspect leaks: %v", err)
	} else if !r.Empty() {
		t.Errorf("leaks after sweep:\n%s", r)
	}
}

func (e *env) client(t *testing.T) *client.Client {
	t.Helper()
	return daemontest.Client(t, e.f.d, e.ns)
}

// result is one in-process leaf run.
type result struct {
	code           int
	err            error
	stdout, stderr string
}

// run runs the leaf in process until the task exits (or ctx ends).
func (e *env) run(ctx context.Context, rs *crd.RunSpec) result {
	var out, errb syncBuffer
	return e.runWith(ctx, rs, &out, &errb)
}

func (e *env) runWith(ctx context.Context, rs *crd.RunSpec, out, errb *syncBuffer) result {
	code, err := leaf.Run(ctx, rs, leaf.Options{Stdout: out, Stderr: errb, Log: e.leafLogIO})
	return result{code: code, err: err, stdout: out.String(), stderr: errb.String()}
}

func (e *env) mustReport(t *testing.T, r result) *report.Report {
	t.Helper()
	if r.err != nil {
		t.Fatalf("leaf: %v\nstderr: %s", r.err, r.stderr)
	}
	if r.code != 0 {
		t.Fatalf("exit code %d, stderr: %s", r.code, r.stderr)
	}
	rep, err := report.Find([]byte(r.stdout))
	if err != nil {
		t.Fatalf("no report in output: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return rep
}

// waitRunning polls until the service's task is running.
func (e *env) waitRunning(t *testing.T, c *client.Client, id string, within time.Duration, done <-chan struct{}) client.Task {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), e.ns)
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			t.Fatalf("leaf ended before %s ran", id)
		default:
		}
		if ctr, err := c.LoadContainer(ctx, id); err == nil {
			if task, err := ctr.Task(ctx, nil); err == nil {
				if st, err := task.Status(ctx); err == nil && st.Status == client.Running {
					return task
				}
			}
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not synchronization
	}
	t.Fatalf("%s not running within %s", id, within)
	return nil
}

func TestLeaf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("these tests run containers and need root: run `sudo go test ./orchd/runtime/containerd/...`")
	}
	imgs := buildImages(t)
	bin := orchdBinary(t)
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			d := daemontest.Start(t, tc)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			probe, err := imgs.Get(images.Probe)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := registry.Serve(ctx, "127.0.0.1:0", probe)
			if err != nil {
				t.Fatalf("registry: %v", err)
			}
			t.Cleanup(func() { reg.Close() })
			f := &fixture{tc: tc, d: d, imgs: imgs, reg: reg, bin: bin}
			t.Run("ExitCode", f.testExitCode)
			t.Run("SpecAlignment", f.testSpecAlignment)
			t.Run("EntrypointCmd", f.testEntrypointCmd)
			t.Run("CPUQuotaNproc", f.testCPUQuotaNproc)
			t.Run("ImageUser", f.testImageUser)
			t.Run("Publish", f.testPublish)
			t.Run("StopPID1IgnoringSIGTERM", f.testStopPID1)
			t.Run("StopHonorsSIGTERM", f.testStopTerm)
			t.Run("ImageSources", f.testImageSources)
			t.Run("BadInput", f.testBadInput)
			t.Run("KilledLeafRestartAndSweep", f.testKilledLeaf)
			t.Run("ConcurrentStartsOneImage", f.testConcurrentStarts)
			t.Run("CancelledMidStart", f.testCancelledMidStart)
			t.Run("KilledMidStartThenSweep", f.testKilledMidStart)
			t.Run("BinaryBase64SpecExitCode", f.testBinaryBase64)
			t.Run("ContainerdRestart", f.testContainerdRestart)
			t.Run("ExitWhileContainerdDown", f.testExitWhileDaemonDown)
			t.Run("ReconnectBound", f.testReconnectBound)
		})
	}
}

func (f *fixture) probeService(t *testing.T, name, cmd string) spec.Service {
	return spec.Service{Name: name, Mode: spec.ModeContainer, Image: f.layout(t, images.Probe).Dir, Cmd: cmd}
}

func (f *fixture) testExitCode(t *testing.T) {
	e := f.env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, code := range []int{0, 3, 42} {
		r := e.run(ctx, e.runSpec(f.probeService(t, "exit", fmt.Sprintf("exit %d", code))))
		if r.err != nil {
			t.Fatalf("exit %d: %v", code, r.err)
		}
		if r.code != code {
			t.Errorf("exit %d: leaf returned %d", code, r.code)
		}
	}
}

func (f *fixture) testSpecAlignment(t *testing.T) {
	e := f.env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hostDir := t.TempDir()
	envFile := filepath.Join(e.projDir, "svc.env")
	if err := os.WriteFile(envFile, []byte("# comment\nFROM_FILE=file\nBOTH=file\nQUOTED=\"q v\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cpus := 0.5
	svc := f.probeService(t, "align", "report")
	svc.Env = map[string]string{"BOTH": "env", "ONLY_ENV": "e"}
	svc.EnvFiles = []string{envFile}
	svc.Workdir = "/tmp"
	svc.Volumes = []spec.Volume{{Source: hostDir, Destination: "/host"}, {Source: "named1", Destination: "/named", IsNamed: true}}
	svc.Resources = spec.Resources{Memory: "64M", CPUs: &cpus, TasksMax: 77, LimitNofile: 1234, IOWeight: 300}
	rep := e.mustReport(t, e.run(ctx, e.runSpec(svc)))

	wantEnv := map[string]string{"FROM_FILE": "file", "BOTH": "env", "ONLY_ENV": "e", "QUOTED": "q v", "PATH": images.DefaultPath}
	for k, v := range wantEnv {
		if rep.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, rep.Env[k], v)
		}
	}
	if got := strings.Join(rep.Args, " "); got != "/probe report" {
		t.Errorf("args %q, want /probe report", got)
	}
	if rep.Cwd != "/tmp" {
		t.Errorf("cwd %q, want /tmp", rep.Cwd)
	}
	if rep.Hostname != "align" {
		t.Errorf("hostname %q, want align", rep.Hostname)
	}
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &st); err != nil {
		t.Fatal(err)
	}
	if rep.NetNSInode != st.Ino {
		t.Errorf("netns inode %d, want the host's %d", rep.NetNSInode, st.Ino)
	}
	for _, dst := range []string{"/host", "/named"} {
		m, ok := findMount(rep, dst)
		if !ok {
			t.Errorf("no mount at %s", dst)
			continue
		}
		if !m.HasOption("rw") {
			t.Errorf("mount %s options %v, want rw", dst, m.Options)
		}
	}
	named := contract.NamedVolume(e.dataDir, e.ns, "named1")
	if fi, err := os.Stat(named); err != nil {
		t.Errorf("named volume dir: %v", err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Errorf("named volume dir mode %v, want 0700", fi.Mode().Perm())
	}
	cg := rep.Cgroup
	if cg.Version == 0 {
		t.Logf("probe errors: %v\nmounts: %+v", rep.Errors, rep.Mounts)
	}
	checkPtr(t, "memory limit", cg.MemoryLimitBytes, 64<<20)
	checkPtr(t, "cfs quota", cg.CPUQuotaUS, 50000)
	checkPtr(t, "cfs period", cg.CPUPeriodUS, 100000)
	checkPtr(t, "pids.max", cg.PidsMax, 77)
	if rl := rep.Rlimits["NOFILE"]; rl.Soft != 1234 || rl.Hard != 1234 {
		t.Errorf("NOFILE %+v, want 1234/1234", rl)
	}
	wantPath := "/" + e.ns + "/" + crd.ContainerID(e.ns, "align")
	if cg.Version == 1 && cg.Path != wantPath {
		t.Errorf("cgroup path %q, want containerd's default %q", cg.Path, wantPath)
	}
	// IO_WEIGHT applies only where the host has a weight file; otherwise the
	// leaf logs that it was skipped and the start still succeeds.
	if cg.IOWeight != nil {
		checkPtr(t, "io weight", cg.IOWeight, 300)
	} else if !strings.Contains(e.leafLog.String(), "IO_WEIGHT not applied") {
		t.Errorf("IO weight neither applied nor reported as skipped; leaf log:\n%s", e.leafLog)
	}
}

func findMount(rep *report.Report, dst string) (report.Mount, bool) {
	for _, m := range rep.Mounts {
		if m.MountPoint == dst {
			return m, true
		}
	}
	return report.Mount{}, false
}

func checkPtr(t *testing.T, what string, got *int64, want int64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: not readable in the container, want %d", what, want)
		return
	}
	if *got != want {
		t.Errorf("%s = %d, want %d", what, *got, want)
	}
}

func (f *fixture) testEntrypointCmd(t *testing.T) {
	e := f.env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := f.probeService(t, "entry", `--then "exit" '5'`)
	svc.Entrypoint = "/probe report"
	r := e.run(ctx, e.runSpec(svc))
	if r.err != nil || r.code != 5 {
		t.Fatalf("code %d err %v, want 5; stderr %s", r.code, r.err, r.stderr)
	}
	rep, err := report.Find([]byte(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rep.Args, "|"); got != "/probe|report|--then|exit|5" {
		t.Errorf("args %q", got)
	}
	// ENTRYPOINT alone resets the image CMD (sleep forever) as in Docker.
	svc = f.probeService(t, "entry", "")
	svc.Entrypoint = "/probe exit 9"
	if r := e.run(ctx, e.runSpec(svc)); r.err != nil || r.code != 9 {
		t.Errorf("entrypoint only: code %d err %v, want 9", r.code, r.err)
	}
}

func (f *fixture) testCPUQuotaNproc(t *testing.T) {
	e := f.env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := f.probeService(t, "quota", "report")
	svc.Resources = spec.Resources{CPUQuota: "150%", LimitNproc: 555}
	rep := e.mustReport(t, e.run(ctx, e.runSpec(svc)))
	checkPtr(t, "cfs quota", rep.Cgroup.CPUQuotaUS, 150000)
	checkPtr(t, "cfs period", rep.Cgroup.CPUPeriodUS, 100000)
	checkPtr(t, "pids.max (from LIMIT_NPROC)", rep.Cgroup.PidsMax, 555)
	if rl := rep.Rlimits["NPROC"]; rl.Soft != 555 || rl.Hard != 555 {
		t.Errorf("NPROC %+v, want 555/555", rl)
	}
}

func (f *fixture) testImageUser(t *testing.T) {
	e := f.env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	svc := spec.Service{Name: "user", Image: "oci-layout://" + f.layout(t, images.ProbeUser).Dir, Cmd: "report"}
	rep := e.mustReport(t, e.run(ctx, e.runSpec(svc)))
	if rep.UID != images.AppUID || rep.GID != images.AppGID {
		t.Errorf("uid/gid %d/%d, want %d/%d (image USER %s from its /etc/passwd)", rep.UID, rep.GID, images.AppUID, images.AppGID, images.AppUser)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (f *fixture) testPublish(t *testing.T) {
	e := f.env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cport, hport := freePort(t), freePort(t)
	svc := f.probeService(t, "web", fmt.Sprintf("http %d --status 201", cport))
	svc.Publish = []spec.Publish{{Host: hport, Container: cport, HostIP: "127.0.0.1"}}
	svc.Timeouts.Stop = "5s"
	rctx, stop := context.WithCancel(ctx)
	done := make(chan result, 1)
	go func() { done <- e.run(rctx, e.runSpec(svc)) }()
	var last error
	deadline := time.Now().Add(time.Minute)
	ok := false
	for time.Now().Before(deadline) && !ok {
		select {
		case r := <-done:
			t.Fatalf("leaf ended early: code %d err %v stderr %s", r.code, r.err, r.stderr)
		default:
		}
		status, err := httpStatus(fmt.Sprintf("127.0.0.1:%d", hport))
		if err == nil && status == 201 {
			ok = true
			break
		}
		last = err
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	stop()
	r := <-done
	if !ok {
		t.Fatalf("no 201 through the forwarder at :%d -> :%d: %v", hport, cport, last)
	}
	if r.err != nil {
		t.Errorf("leaf: %v", r.err)
	}
	// The forwarder's listener is gone with the leaf.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", hport), time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still accepts after the leaf ended", hport)
	}
}

func httpStatus(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		return 0, err
	}
	b, err := io.ReadAll(c)
	if err != nil && len(b) == 0 {
		return 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return 0, fmt.Errorf("bad response %q", b)
	}
	return strconv.Atoi(fields[1])
}

// stopAfterRunning starts svc, waits for its task to run and the probe to
// print its ready line (its signal disposition is set by then), cancels the leaf and returns how long the container's init took to die and
// how long the whole stop (with the deletes) took.
func (e *env) stopAfterRunning(t *testing.T, svc spec.Service) (r result, died, took time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := e.client(t)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan result, 1)
	ended := make(chan struct{})
	var out, errb syncBuffer
	go func() { r := e.runWith(rctx, e.runSpec(svc), &out, &errb); done <- r; close(ended) }()
	task := e.waitRunning(t, c, crd.ContainerID(e.ns, svc.Name), time.Minute, ended)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(errb.String(), ": ready pid"); {
		if time.Now().After(deadline) {
			t.Fatal("service not ready within 1m")
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	pid := int(task.Pid())
	start := time.Now()
	stop()
	diedC := make(chan time.Duration, 1)
	go func() {
		for syscall.Kill(pid, 0) == nil {
			time.Sleep(10 * time.Millisecond) // poll interval
		}
		diedC <- time.Since(start)
	}()
	r = <-done
	took = time.Since(start)
	select {
	case died = <-diedC:
	case <-time.After(10 * time.Second):
		t.Fatalf("container init %d still alive 10s after the leaf returned", pid)
	}
	return r, died, took
}

func (f *fixture) testStopPID1(t *testing.T) {
	e := f.env(t)
	svc := f.probeService(t, "pid1", "pid1-raw")
	svc.Timeouts.Stop = "3s"
	r, died, took := e.stopAfterRunning(t, svc)
	if r.err != nil {
		t.Fatalf("leaf: %v", r.err)
	}
	if r.code != 137 {
		t.Errorf("exit code %d, want 137 (SIGKILL after the grace period)", r.code)
	}
	// The init must live through (most of) the grace, then die within TIMEOUT_STOP.
	// 500ms of slack covers polling and scheduling on a loaded two-core host.
	if died < 2*time.Second || died > 3*time.Second+500*time.Millisecond {
		t.Errorf("init died %s after the stop began, want between the grace (2s) and TIMEOUT_STOP (3s)", died)
	}
	if took > 30*time.Second {
		t.Errorf("stop with deletes took %s", took)
	}
	t.Logf("PID 1 ignoring SIGTERM died after %s, leaf done after %s (TIMEOUT_STOP 3s)", died, took)
}

func (f *fixture) testStopTerm(t *testing.T) {
	e := f.env(t)
	svc := f.probeService(t, "term", "sleep forever")
	svc.Timeouts.Stop = "20s"
	r, died, _ := e.stopAfterRunning(t, svc)
	if r.err != nil {
		t.Fatalf("leaf: %v", r.err)
	}
	if r.code != 143 {
		t.Errorf("exit code %d, want 143 (SIGTERM)", r.code)
	}
	if died > 10*time.Second {
		t.Errorf("init died after %s: SIGTERM should end the probe without waiting for the 20s grace", died)
	}
}

func (f *fixture) testImageSources(t *testing.T) {
	e := f.env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := e.client(t)
	nsctx := namespaces.WithNamespace(ctx, e.ns)
	probe := f.layout(t, images.Probe)

	check := func(what, image string) {
		t.Helper()
		svc := spec.Service{Name: "src", Image: image, Cmd: "exit 7"}
		r := e.run(ctx, e.runSpec(svc))
		if r.err != nil || r.code != 7 {
			t.Errorf("%s (%s): code %d err %v, want 7", what, image, r.code, r.err)
		}
	}
	// A plain layout path, relative to the project dir.
	rel, err := filepath.Rel(e.projDir, probe.Dir)
	if err != nil {
		t.Fatal(err)
	}
	check("layout path", probe.Dir)
	check("relative layout path", "./"+rel)
	check("oci-layout:// with tag", "oci-layout://"+probe.Dir+":latest")

	// Registry: the Transfer service on 2.x, a client-side pull on 1.6.
	e.leafLog.Reset()
	check("registry", f.reg.Ref(images.Probe))
	want := "pulling image (client pull)"
	if f.tc.Major() >= 2 {
		want = "pulling image (transfer service)"
	}
	if !strings.Contains(e.leafLog.String(), want) {
		t.Errorf("registry pull: leaf log lacks %q:\n%s", want, e.leafLog)
	}
	img, err := c.GetImage(nsctx, f.reg.Ref(images.Probe))
	if err != nil {
		t.Fatalf("pulled image not in store: %v", err)
	}
	if img.Labels()[crd.LabelNamespace] != e.ns {
		t.Errorf("pulled image labels %v: want %s=%s", img.Labels(), crd.LabelNamespace, e.ns)
	}

	// Already present: run again from the store; the registry is not asked.
	e.leafLog.Reset()
	check("already present", f.reg.Ref(images.Probe))
	if strings.Contains(e.leafLog.String(), "pulling image") {
		t.Errorf("present image was pulled again:\n%s", e.leafLog)
	}
	// An image put in the store by someone else is used as is, labels untouched.
	pre := "orchd.test/preloaded:v1"
	if _, err := c.ImageService().Create(nsctx, imageRecord(pre, img)); err != nil {
		t.Fatal(err)
	}
	check("preloaded", pre)
	got, err := c.GetImage(nsctx, pre)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Labels()) != 0 {
		t.Errorf("preloaded image was relabeled: %v", got.Labels())
	}
	// Sweep keeps images it did not fetch; this one is the test's to remove.
	if err := c.ImageService().Delete(nsctx, pre); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) testBadInput(t *testing.T) {
	e := f.env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	missing := filepath.Join(t.TempDir(), "nope")
	cases := []struct {
		name, want string
		svc        spec.Service
	}{
		{"missing volume source", "must exist", spec.Service{Name: "bad", Image: f.layout(t, images.Probe).Dir, Volumes: []spec.Volume{{Source: missing, Destination: "/x"}}}},
		{"not a layout", "not an OCI image layout", spec.Service{Name: "bad", Image: "oci-layout://" + t.TempDir()}},
		{"missing env file", "ENV_FILE", spec.Service{Name: "bad", Image: f.layout(t, images.Probe).Dir, EnvFiles: []string{missing}}},
		{"unknown tag", "no manifest tagged", spec.Service{Name: "bad", Image: "oci-layout://" + f.layout(t, images.Probe).Dir + ":nosuch"}},
	}
	for _, tc := range cases {
		r := e.run(ctx, e.runSpec(tc.svc))
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one containing %q", tc.name, r.err, tc.want)
		}
	}
	// A daemon that is not there: the error names the socket and how to start one.
	rs := e.runSpec(f.probeService(t, "bad", "exit 0"))
	rs.Socket = filepath.Join(t.TempDir(), "none.sock")
	r := e.run(ctx, rs)
	if r.err == nil || !strings.Contains(r.err.Error(), rs.Socket) || !strings.Contains(r.err.Error(), "orchd-harness daemon") {
		t.Errorf("missing socket: %v", r.err)
	}
}

// orchdBinary builds cmd/orchd.
func orchdBinary(t *testing.T) string { return gobuild.OrchdT(t) }

// startLeafProcess runs `orchd containerd-run --spec-file` as its own process,
// the way a supervisor does.
func (e *env) startLeafProcess(t *testing.T, bin, specFile string) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command(bin, "containerd-run", "--spec-file", specFile)
	logf, err := os.OpenFile(filepath.Join(e.stateDir, "leaf.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), crd.EnvSocket+"=") // the spec names the socket
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return cmd, done
}

func (f *fixture) testKilledLeaf(t *testing.T) {
	e := f.env(t)
	bin := f.bin
	c := e.client(t)
	ctx := namespaces.WithNamespace(context.Background(), e.ns)
	const secret, fileSecret = "s3cr3t-env-value-91", "s3cr3t-file-value-27"
	envFile := filepath.Join(e.projDir, "secret.env")
	if err := os.WriteFile(envFile, []byte("FILE_SECRET="+fileSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := f.probeService(t, "killed", "sleep forever")
	svc.Env = map[string]string{"SECRET": secret}
	svc.EnvFiles = []string{envFile}
	svc.Timeouts.Stop = "5s"

	// The cutting writes the spec file the way tend would.
	rt := &crd.Runtime{Socket: e.f.d.Address()}
	cut, err := rt.Cut(svc, contract.Env{ProjectDir: e.projDir, StateDir: e.stateDir, DataDir: e.dataDir, Namespace: e.ns, Orchd: bin})
	if err != nil {
		t.Fatal(err)
	}
	arts, err := cut.FileArtifacts()
	if err != nil {
		t.Fatal(err)
	}
	for _, fl := range arts {
		if err := os.WriteFile(fl.Path, []byte(fl.Content), os.FileMode(fl.Mode)); err != nil {
			t.Fatal(err)
		}
	}
	id := crd.ContainerID(e.ns, svc.Name)
	first, firstDone := e.startLeafProcess(t, bin, cut.Files[0].Path)
	task1 := e.waitRunning(t, c, id, time.Minute, firstDone)

	// No secret on any command line while the container runs.
	procs, err := procfs.Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if cl := p.Cmdline(); strings.Contains(cl, secret) || strings.Contains(cl, fileSecret) {
			t.Errorf("secret on the command line of pid %d: %s", p.Pid, cl)
		}
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-firstDone

	// A new leaf replaces the orphaned container: one container, one task, one shim.
	second, secondDone := e.startLeafProcess(t, bin, cut.Files[0].Path)
	var task2 client.Task
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		task2 = e.waitRunning(t, c, id, time.Minute, secondDone)
		if task2.Pid() != task1.Pid() {
			break
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	if task2.Pid() == task1.Pid() {
		t.Fatalf("the second leaf did not replace the stale task (pid %d)", task1.Pid())
	}
	ctrs, err := c.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 1 {
		t.Errorf("%d containers, want 1", len(ctrs))
	}
	if procs, err = procfs.Processes(); err != nil {
		t.Fatal(err)
	}
	shims := 0
	for _, s := range procfs.Shims(procs) {
		if s.Address == e.f.d.Address() {
			shims++
		}
	}
	if shims != 1 {
		t.Errorf("%d shims for the daemon, want 1", shims)
	}

	// SIGKILL this one too; Sweep (what fell calls) removes what it left.
	if err := second.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-secondDone
	if _, err := c.LoadContainer(ctx, id); err != nil {
		t.Fatalf("a SIGKILLed leaf should leave its container for Sweep: %v", err)
	}
	if err := rt.Sweep(context.Background(), contract.Env{ProjectDir: e.projDir, StateDir: e.stateDir, DataDir: e.dataDir, Namespace: e.ns}, []string{svc.Name}); err != nil {
		t.Fatalf("sweep: %v", err)
	}
	if _, err := c.LoadContainer(ctx, id); !errdefs.IsNotFound(err) {
		t.Errorf("container after sweep: %v", err)
	}
	ls, err := c.LeasesService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Labels[crd.LabelNamespace] == e.ns {
			t.Errorf("lease %s left after sweep", l.ID)
		}
	}
}

func imageRecord(name string, img client.Image) cimages.Image {
	return cimages.Image{Name: name, Target: img.Target()}
}

type syncBuffer = daemontest.SyncBuffer

// testWriter sends the leaf's log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testCancelledMidStart cancels the leaf at several points of its start
// (connect, image import, container create, task start): each run returns and
// leaves no task behind (RECREATE never keeps the container for the next
// start; the sweep in assertNoLeaks must then remove it).
func (f *fixture) testCancelledMidStart(t *testing.T) {
	e := f.env(t)
	for _, after := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond, 700 * time.Millisecond} {
		ctx, cancel := context.WithCancel(context.Background())
		timer := time.AfterFunc(after, cancel)
		svc := spec.Service{Name: "cancel", Image: "oci-layout://" + f.layout(t, images.ProbeLayers).Dir, Cmd: "sleep forever"}
		done := make(chan result, 1)
		go func() { done <- e.run(ctx, e.runSpec(svc)) }()
		select {
		case r := <-done:
			t.Logf("cancel after %s: code %d err %v", after, r.code, r.err)
		case <-time.After(time.Minute):
			t.Fatalf("cancel after %s: the leaf did not return within 1m", after)
		}
		timer.Stop()
		cancel()
		c := e.client(t)
		tasks, err := c.TaskService().List(namespaces.WithNamespace(context.Background(), e.ns), &tasksapi.ListTasksRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks.Tasks) != 0 {
			t.Errorf("cancel after %s: %d tasks left", after, len(tasks.Tasks))
		}
	}
}

// testBinaryBase64 runs the leaf through the orchd binary with --spec BASE64:
// the process exits with the container's exit code.
func (f *fixture) testBinaryBase64(t *testing.T) {
	e := f.env(t)
	bin := f.bin
	b, err := e.runSpec(f.probeService(t, "b64", "exit 7")).Encode()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "containerd-run", "--spec", base64.StdEncoding.EncodeToString(b))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("exit %v, want status 7\n%s", err, out)
	}
}

// testKilledMidStart SIGKILLs leaf processes at points of their start (the
// delays are fault-injection points, not synchronization); Sweep, as fell
// runs it, must then leave the namespace empty, leases and snapshots included.
func (f *fixture) testKilledMidStart(t *testing.T) {
	e := f.env(t)
	rt := &crd.Runtime{Socket: e.f.d.Address()}
	env := contract.Env{ProjectDir: e.projDir, StateDir: e.stateDir, DataDir: e.dataDir, Namespace: e.ns, Orchd: f.bin}
	svc := spec.Service{Name: "midkill", Mode: spec.ModeContainer, Image: "oci-layout://" + f.layout(t, images.ProbeLayers).Dir, Cmd: "sleep forever"}
	cut, err := rt.Cut(svc, env)
	if err != nil {
		t.Fatal(err)
	}
	arts, err := cut.FileArtifacts()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(arts[0].Path, []byte(arts[0].Content), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ms := range []int{50, 150, 300, 400, 500, 600, 700, 800, 1000, 1300} {
		after := time.Duration(ms) * time.Millisecond
		cmd, done := e.startLeafProcess(t, f.bin, cut.Files[0].Path)
		time.Sleep(after) // the fault-injection point
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := rt.Sweep(ctx, env, nil); err != nil {
			t.Errorf("sweep after kill at %s: %v", after, err)
		}
		r, err := leaks.Inspect(ctx, e.target())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if !r.Empty() {
			t.Errorf("after kill at %s and sweep:\n%s", after, r)
		}
	}
}

// testConcurrentStarts starts several services from one not-yet-imported
// layout at once, as grow does: every leaf must get the image and run.
func (f *fixture) testConcurrentStarts(t *testing.T) {
	e := f.env(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const n = 6
	results := make(chan result, n)
	for i := range n {
		svc := spec.Service{Name: fmt.Sprintf("many%d", i), Image: "oci-layout://" + f.layout(t, images.ProbeLayers).Dir, Cmd: fmt.Sprintf("exit %d", 10+i)}
		go func() { results <- e.run(ctx, e.runSpec(svc)) }()
	}
	codes := map[int]bool{}
	for range n {
		r := <-results
		if r.err != nil {
			t.Errorf("leaf: %v", r.err)
			continue
		}
		codes[r.code] = true
	}
	for i := range n {
		if !codes[10+i] {
			t.Errorf("no run exited %d: %v", 10+i, codes)
		}
	}
}
