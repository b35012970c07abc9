package orchdi_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/platform/orchdi"
	"github.com/orchd/orchd/orchd/runtime/bare"
	"github.com/orchd/orchd/orchd/spec"
	"github.com/orchd/orchd/orchd/supervise"
)

// orchdBin is the orchd binary built once for the package's tests;
// superviseBin, built beside it, is what supervisors run as (as installed).
var orchdBin, superviseBin string

func TestMain(m *testing.M) {
	if pidfile := os.Getenv(fakeLeafEnv); pidfile != "" {
		fakeLeaf(pidfile)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "orchdi-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "orchdi tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	orchdBin, superviseBin = filepath.Join(dir, "orchd"), filepath.Join(dir, orchdi.SuperviseBinary)
	var opts []gobuild.Option
	if raceBuild || os.Getenv("ORCHDI_TEST_RACE") != "" {
		// Supervisors built with the race detector; worlds check their logs.
		opts = append(opts, gobuild.Race())
	}
	root, err := gobuild.ModuleRoot(context.Background())
	if err == nil {
		_, err = gobuild.Orchd(context.Background(), root, dir, opts...)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "orchdi tests: build orchd and orchd-supervise:", err)
		return 1
	}
	return m.Run()
}

var nsSeq atomic.Int64

// world is one test's project, state dir and platform.
type world struct {
	t    *testing.T
	env  contract.Env
	p    *orchdi.Platform
	proj string
}

// newWorld makes a fresh state dir and registers a fell that must leave no
// process of the namespace behind.
func newWorld(t *testing.T) *world {
	t.Helper()
	state := t.TempDir()
	proj := t.TempDir()
	w := &world{t: t, p: orchdi.New(orchdi.WithBinary(superviseBin)), proj: proj,
		env: contract.Env{ProjectDir: proj, StateDir: state, DataDir: filepath.Join(state, "data"),
			Namespace: fmt.Sprintf("t%d", nsSeq.Add(1)), Orchd: orchdBin}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := w.p.Fell(ctx, w.env, platform.FellOptions{}); err != nil {
			t.Errorf("cleanup fell: %v", err)
		}
		if left := ours(state, proj); len(left) > 0 {
			t.Errorf("processes left after fell: %v", left)
		}
		logs, _ := filepath.Glob(filepath.Join(state, "logs", "*.log"))
		for _, l := range logs {
			if b, _ := os.ReadFile(l); bytes.Contains(b, []byte("DATA RACE")) {
				t.Errorf("data race in %s:\n%s", l, b)
			}
		}
	})
	return w
}

// svc is a host service with short timeouts.
func svc(name, run string, mods ...func(*spec.Service)) spec.Service {
	s := spec.Service{Name: name, Mode: spec.ModeHost, RunCommand: run, Recreate: "never",
		Restart:  spec.Restart{Policy: spec.RestartNo, Delay: "0s"},
		Timeouts: spec.Timeouts{Stop: "2s"}}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func (w *world) beds(svcs ...spec.Service) contract.Beds {
	w.t.Helper()
	var cuts []contract.Cutting
	for _, s := range svcs {
		cut, err := bare.New().Cut(s, w.env)
		if err != nil {
			w.t.Fatalf("cut %s: %v", s.Name, err)
		}
		cuts = append(cuts, cut)
	}
	return w.plant(cuts...)
}

// plant plants hand-made cuttings (what another runtime might cut).
func (w *world) plant(cuts ...contract.Cutting) contract.Beds {
	w.t.Helper()
	c := contract.Cuttings{Version: contract.Version, Runtime: "bare", Env: w.env, Cuttings: cuts}
	b, err := w.p.Plant(c, "user")
	if err != nil {
		w.t.Fatalf("plant: %v", err)
	}
	return b
}

func (w *world) tend(opts platform.TendOptions, svcs ...spec.Service) platform.TendResult {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := w.p.Tend(ctx, w.beds(svcs...), opts)
	if err != nil {
		w.t.Fatalf("tend: %v", err)
	}
	return res
}

func (w *world) grow(svcs ...spec.Service) platform.TendResult {
	w.t.Helper()
	return w.tend(platform.TendOptions{}, svcs...)
}

func (w *world) survey() map[string]platform.ServiceStatus {
	w.t.Helper()
	rows, err := w.p.Survey(context.Background(), w.env)
	if err != nil {
		w.t.Fatalf("survey: %v", err)
	}
	out := map[string]platform.ServiceStatus{}
	for _, r := range rows {
		out[r.Name] = r
	}
	return out
}

// waitFor polls survey until cond holds for service name, failing at timeout.
func (w *world) waitFor(name string, timeout time.Duration, what string, cond func(platform.ServiceStatus) bool) platform.ServiceStatus {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	var last platform.ServiceStatus
	for {
		row, ok := w.survey()[name]
		if ok {
			last = row
			if cond(row) {
				return row
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not %s within %s; last status %+v\nservice log:\n%s\nsupervisor log:\n%s", name, what, timeout, last,
				readFile(contract.Layout{StateDir: w.env.StateDir}.LogFile(w.label(name))),
				readFile(contract.Layout{StateDir: w.env.StateDir}.SuperviseLog(w.label(name))))
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
}

func (w *world) waitState(name, state string, timeout time.Duration) platform.ServiceStatus {
	w.t.Helper()
	return w.waitFor(name, timeout, state, func(r platform.ServiceStatus) bool { return r.State == state })
}

func (w *world) waitRunningHealthy(name string, timeout time.Duration) platform.ServiceStatus {
	w.t.Helper()
	return w.waitFor(name, timeout, "running and healthy", func(r platform.ServiceStatus) bool {
		return r.State == contract.StateRunning && r.Healthy
	})
}

func (w *world) label(name string) string { return contract.Label(w.env.Namespace, name) }

func (w *world) layout() contract.Layout { return contract.Layout{StateDir: w.env.StateDir} }

func (w *world) fell() {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := w.p.Fell(ctx, w.env, platform.FellOptions{}); err != nil {
		w.t.Fatalf("fell: %v", err)
	}
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

// waitFile polls until path exists and returns its trimmed content.
func waitFile(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 && bytes.HasSuffix(b, []byte("\n")) {
			return strings.TrimSpace(string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not written within %s", path, timeout)
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
}

func pidFrom(t *testing.T, path string) int {
	t.Helper()
	pid, err := strconv.Atoi(waitFile(t, path, 10*time.Second))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// waitGone polls until none of pids is alive.
func waitGone(t *testing.T, timeout time.Duration, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still alive after %s: %v", timeout, left)
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
}

// ours lists live processes whose argv or cwd names one of dirs.
func ours(dirs ...string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		cwd, _ := os.Readlink("/proc/" + e.Name() + "/cwd")
		for _, d := range dirs {
			if bytes.Contains(cmd, []byte(d)) || strings.HasPrefix(cwd, d) {
				out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmd), "\x00", " ")))
				break
			}
		}
	}
	return out
}

func readStatus(path string) (contract.Status, error) { return supervise.ReadStatus(path) }

func parseInt64(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
