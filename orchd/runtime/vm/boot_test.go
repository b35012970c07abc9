package vm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orchd/fixtures/probe/report"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/vm"
	"github.com/orchd/orchd/orchd/runtime/vm/kernel"
	"github.com/orchd/orchd/orchd/spec"
)

// bootEnv is what every boot test shares: a static orchd, the probe image, a kernel.
type bootEnv struct {
	orchd string
	probe string // oci-layout:// reference
}

var (
	bootOnce sync.Once
	bootVal  bootEnv
	bootErr  error
)

// prepareBoot builds (once per test binary) what a real VM boot needs. Missing
// prerequisites fail with the command that installs them.
func prepareBoot(t *testing.T) bootEnv {
	t.Helper()
	if _, err := exec.LookPath(vm.QemuBinary); err != nil {
		t.Fatalf("%s is required for vm boot tests: %s", vm.QemuBinary, vm.QemuInstall)
	}
	bootOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		dir, err := os.MkdirTemp("", "orchd-vm-test-")
		if err != nil {
			bootErr = err
			return
		}
		if _, err = kernel.Resolve(ctx, os.Stderr); err != nil {
			bootErr = err
			return
		}
		root, err := gobuild.ModuleRoot(ctx)
		if err != nil {
			bootErr = err
			return
		}
		bin, err := gobuild.Orchd(ctx, root, dir)
		if err != nil {
			bootErr = errors.New("build static orchd: " + err.Error())
			return
		}
		set, err := images.Build(ctx, filepath.Join(dir, "images"), images.WithNames(images.Probe))
		if err != nil {
			bootErr = err
			return
		}
		l, _ := set.Get(images.Probe)
		bootVal = bootEnv{orchd: bin, probe: "oci-layout://" + l.Dir}
	})
	if bootErr != nil {
		t.Fatal(bootErr)
	}
	return bootVal
}

// TestMain removes the shared build dir after every test ran.
func TestMain(m *testing.M) {
	code := m.Run()
	if bootVal.orchd != "" {
		os.RemoveAll(filepath.Dir(bootVal.orchd))
	}
	os.Exit(code)
}

type bootRun struct {
	code    int
	err     error
	out     string // the leaf's stdout: the console (the command's stdout)
	errOut  string // the leaf's stderr: the command's stderr, qemu's and the leaf's diagnostics
	qemuPid int
	stopped time.Duration // from the stop request to the leaf's return
}

// boot runs svc under vm-run's leaf; a non-empty stopWhen asks it to stop once
// the console shows that text (the probe's "ready" line: its signal handling is set).
func boot(t *testing.T, env bootEnv, svc spec.Service, stopWhen string) bootRun {
	t.Helper()
	return bootWith(t, env, svc, stopWhen, nil)
}

// bootWith is boot that, once stopWhen shows, runs during (while the guest
// runs) before asking the VM to stop.
func bootWith(t *testing.T, env bootEnv, svc spec.Service, stopWhen string, during func(context.Context)) bootRun {
	t.Helper()
	state := t.TempDir()
	ce := contract.Env{ProjectDir: t.TempDir(), StateDir: state, DataDir: filepath.Join(state, "data"), Namespace: "t", Orchd: env.orchd}
	c := plantCutting(t, svc, ce)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	// stopWhen may show on either stream (the probe's "ready" lines are on stderr).
	seen, once := make(chan struct{}), &sync.Once{}
	out := &syncBuffer{want: stopWhen, seen: seen, once: once}
	diag := &syncBuffer{want: stopWhen, seen: seen, once: once}
	var r bootRun
	stopAt := make(chan time.Time, 1)
	if stopWhen != "" {
		go func() {
			select {
			case <-seen:
				if during != nil {
					during(runCtx)
				}
				stopAt <- time.Now()
				stop()
			case <-runCtx.Done():
			}
		}()
	}
	leaf := &vm.Leaf{Stdout: out, Stderr: diag, Self: env.orchd,
		Log:    slog.New(slog.NewTextHandler(diag, nil)),
		OnBoot: func(pid int) { r.qemuPid = pid },
	}
	r.code, r.err = leaf.Run(runCtx, c.Exec.Start[len(c.Exec.Start)-1])
	select {
	case at := <-stopAt:
		r.stopped = time.Since(at)
	default:
		if stopWhen != "" {
			t.Errorf("the console never showed %q", stopWhen)
		}
	}
	r.out, r.errOut = out.String(), diag.String()
	t.Logf("service %s: exit %d err %v\nconsole:\n%s\nstderr:\n%s", svc.Name, r.code, r.err, r.out, r.errOut)
	assertNoQemu(t, r.qemuPid, contract.Layout{StateDir: state}.VMWorkDir(contract.Label("t", svc.Name)))
	return r
}

// plantCutting cuts svc and writes its files as plant does (the spec file
// with the service rendered into it).
func plantCutting(t *testing.T, svc spec.Service, ce contract.Env) contract.Cutting {
	t.Helper()
	c, err := vm.New().Cut(svc, ce)
	if err != nil {
		t.Fatal(err)
	}
	arts, err := c.FileArtifacts()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range arts {
		if err := os.MkdirAll(filepath.Dir(a.Path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(a.Path, []byte(a.Content), os.FileMode(a.Mode)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func assertNoQemu(t *testing.T, pid int, work string) {
	t.Helper()
	if pid == 0 {
		t.Error("qemu never started")
		return
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("qemu (pid %d) still exists after vm-run returned: kill(0) = %v", pid, err)
	}
	if _, err := os.Stat(work); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir %s left behind: %v", work, err)
	}
}

// syncBuffer collects output; when want is set, seen closes (once, through
// once when buffers share seen) when it appears.
type syncBuffer struct {
	mu   sync.Mutex
	b    bytes.Buffer
	want string
	seen chan struct{}
	once *sync.Once
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.want != "" && strings.Contains(s.b.String(), s.want) {
		if s.once != nil {
			s.once.Do(func() { close(s.seen) })
		} else {
			close(s.seen)
		}
		s.want = ""
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func probeService(env bootEnv, name, cmd string) spec.Service {
	return spec.Service{Name: name, Mode: spec.ModeContainer, Image: env.probe, Cmd: cmd,
		Recreate: "never", Restart: spec.Restart{Policy: spec.RestartNo}, Resources: spec.Resources{Memory: "256M"}}
}

func TestBootExitCode(t *testing.T) {
	t.Parallel()
	env := prepareBoot(t)
	r := boot(t, env, probeService(env, "exit7", "exit 7"), "")
	if r.err != nil || r.code != 7 {
		t.Fatalf("exit code = %d (%v), want 7", r.code, r.err)
	}
	if !strings.Contains(r.out, "ORCHD-EXIT 7") {
		t.Errorf("console lacks the exit marker")
	}
}

func TestBootStopWithinTimeout(t *testing.T) {
	t.Parallel()
	env := prepareBoot(t)
	t.Run("term", func(t *testing.T) {
		t.Parallel()
		svc := probeService(env, "sleeper", "sleep forever")
		svc.Timeouts.Stop = "20s"
		r := boot(t, env, svc, "probe: sleep: ready")
		if r.err != nil || r.code != 143 {
			t.Fatalf("exit = %d (%v), want 143: the probe exits 128+SIGTERM", r.code, r.err)
		}
		// The command's stderr is kept apart from its stdout (STDERR vs STDOUT).
		if !strings.Contains(r.errOut, "probe: received terminated") || strings.Contains(r.out, "probe: received terminated") {
			t.Errorf("the probe's stderr line should be on the leaf's stderr only:\nstdout:\n%s\nstderr:\n%s", r.out, r.errOut)
		}
		// SIGTERM reached the process: it ended well before TIMEOUT_STOP.
		if r.stopped >= 20*time.Second {
			t.Errorf("stop took %v, not less than TIMEOUT_STOP 20s", r.stopped)
		}
	})
	t.Run("kill", func(t *testing.T) {
		t.Parallel()
		svc := probeService(env, "stubborn", "term-ignore")
		svc.Timeouts.Stop = "2s"
		r := boot(t, env, svc, "probe: term-ignore: ready")
		if r.err != nil || r.code != 137 {
			t.Fatalf("exit = %d (%v), want 137 (SIGKILL after TIMEOUT_STOP)", r.code, r.err)
		}
		if r.stopped < 2*time.Second {
			t.Errorf("killed after %v, before TIMEOUT_STOP 2s", r.stopped)
		}
	})
}

func TestBootSpecAlignment(t *testing.T) {
	t.Parallel()
	env := prepareBoot(t)
	vol := t.TempDir()
	if err := os.WriteFile(filepath.Join(vol, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := probeService(env, "reporter", "report --stat /vol/hello")
	svc.Env = map[string]string{"GREETING": "hello world"}
	svc.Volumes = []spec.Volume{{Source: vol, Destination: "/vol"}}
	svc.Resources.CPUs = ptr(2.0)
	r := boot(t, env, svc, "")
	if r.err != nil || r.code != 0 {
		t.Fatalf("exit = %d (%v), want 0", r.code, r.err)
	}
	rep, err := report.Find([]byte(r.out))
	if err != nil {
		t.Fatalf("no probe report on the console: %v", err)
	}
	if rep.Env["GREETING"] != "hello world" || rep.Hostname != "reporter" || rep.PID == 1 {
		t.Errorf("env %q hostname %q pid %d", rep.Env["GREETING"], rep.Hostname, rep.PID)
	}
	if p, ok := rep.Paths["/vol/hello"]; !ok || !p.Exists {
		b, _ := json.Marshal(rep.Paths)
		t.Errorf("/vol/hello not visible in the guest: %s", b)
	}
	found := false
	for _, m := range rep.Mounts {
		if m.MountPoint == "/vol" && m.FSType == "9p" {
			found = true
		}
	}
	if !found {
		t.Errorf("no 9p mount at /vol: %+v", rep.Mounts)
	}
	if rep.Cgroup.Version != 2 {
		t.Errorf("guest cgroup version %d, want 2", rep.Cgroup.Version)
	}
}

func TestBootPublish(t *testing.T) {
	t.Parallel()
	env := prepareBoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	svc := probeService(env, "web", "http 8080")
	svc.Publish = []spec.Publish{{Host: port, Container: 8080, HostIP: "127.0.0.1"}}
	svc.Timeouts.Stop = "5s"
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	var served atomic.Bool
	r := bootWith(t, env, svc, "probe: http: ready", func(ctx context.Context) {
		// The guest listens; the host reaches it through qemu's forward.
		deadline := time.Now().Add(time.Minute)
		c := &http.Client{Timeout: 5 * time.Second}
		for time.Now().Before(deadline) && ctx.Err() == nil {
			resp, err := c.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					served.Store(true)
					return
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	if !served.Load() {
		t.Errorf("GET %s never answered 200 through PUBLISH 127.0.0.1:%d:8080", url, port)
	}
	if r.err != nil || r.code != 143 {
		t.Errorf("exit = %d (%v), want 143 after the stop", r.code, r.err)
	}
}

// TestBootSilentGuestIsBootedAgain: a guest that says nothing on its control
// port within the silence limit (here far shorter than any boot under TCG) is
// killed and booted once more with the kernel's warnings on the console; after
// the last attempt the leaf fails and leaves no qemu behind.
func TestBootSilentGuestIsBootedAgain(t *testing.T) {
	t.Parallel()
	env := prepareBoot(t)
	state := t.TempDir()
	ce := contract.Env{ProjectDir: t.TempDir(), StateDir: state, DataDir: filepath.Join(state, "data"), Namespace: "t", Orchd: env.orchd}
	svc := probeService(env, "mute", "sleep forever")
	c := plantCutting(t, svc, ce)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, diag syncBuffer
	var pids []int
	leaf := &vm.Leaf{Stdout: &out, Stderr: &diag, Self: env.orchd,
		Log:          slog.New(slog.NewTextHandler(&diag, nil)),
		OnBoot:       func(pid int) { pids = append(pids, pid) },
		SilenceLimit: 300 * time.Millisecond,
	}
	code, err := leaf.Run(ctx, c.Exec.Start[len(c.Exec.Start)-1])
	t.Logf("exit %d err %v\nstderr:\n%s", code, err, diag.String())
	if err == nil || !strings.Contains(err.Error(), "said nothing") || code != 1 {
		t.Errorf("exit %d err %v, want 1 and the guest's silence named", code, err)
	}
	if len(pids) != 2 {
		t.Errorf("qemu started %d times (%v), want 2: one boot and one more after the silence", len(pids), pids)
	}
	if !strings.Contains(diag.String(), "booting again") {
		t.Errorf("no warning of the second boot on stderr")
	}
	for _, pid := range pids {
		assertNoQemu(t, pid, contract.Layout{StateDir: state}.VMWorkDir(contract.Label("t", svc.Name)))
	}
}
