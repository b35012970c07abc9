// Command driver runs inside the inception VM: it starts a private containerd
// from the tools volume, runs the compiled suites against it with the inner
// orchd, checks the daemon for leaks, and prints every result as an event line
// on the console for the outer side to read.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/leaks"
	"github.com/orchd/orchd/harness/settings"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/inception"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Stdout))
}

type driver struct {
	out io.Writer
}

func (d *driver) emit(e inception.Event) {
	e.Time = time.Now().UTC()
	io.WriteString(d.out, e.Line())
}

func (d *driver) logf(format string, a ...any) {
	d.emit(inception.Event{Type: inception.EventLog, Message: fmt.Sprintf(format, a...)})
}

func run(ctx context.Context, out io.Writer) int {
	d := &driver{out: out}
	fail := func(err error) int {
		d.emit(inception.Event{Type: inception.EventDone, Passed: false, Message: err.Error()})
		return 1
	}
	var m inception.Manifest
	b, err := os.ReadFile(inception.ManifestPath)
	if err != nil {
		return fail(fmt.Errorf("manifest: %w", err))
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fail(fmt.Errorf("manifest: %w", err))
	}
	bin := filepath.Join(inception.ToolsDir, "bin")
	os.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	env := guestEnv()
	d.logf("kernel %s, cgroup %s, %d KiB, %d cpus, %s at %s", env.Kernel, env.CgroupMode, env.MemTotalKiB, env.CPUs, env.ToolsFSType, inception.ToolsDir)
	tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: toolchain.System})
	if err != nil {
		return fail(fmt.Errorf("toolchain in %s: %w", bin, err))
	}
	env.ContainerdVersion, env.RuncVersion = tc.Containerd.Version, tc.Runc.Version
	start := time.Now()
	// Debug: the leak suite counts the daemon's goroutines through pprof.
	dmn, err := daemon.Start(ctx, tc, daemon.Options{Debug: true})
	if err != nil {
		return fail(fmt.Errorf("start containerd: %w", err))
	}
	stopDaemon := func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dmn.Stop(sctx); err != nil {
			d.logf("stop containerd: %v", err)
		}
	}
	defer stopDaemon()
	d.logf("containerd %s up at %s in %v", tc.Containerd.Version, dmn.Address(), time.Since(start).Round(time.Millisecond))
	d.emit(inception.Event{Type: inception.EventEnv, Env: &env})

	passed := true
	for _, name := range m.Suites {
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		r := d.runSuite(ctx, m, name, dmn)
		passed = passed && r.Passed
		d.emit(inception.Event{Type: inception.EventSuite, Suite: &r})
	}

	empty, rep, err := inspect(ctx, dmn)
	if err != nil {
		rep = err.Error()
		empty = false
	}
	d.emit(inception.Event{Type: inception.EventLeaks, LeaksEmpty: &empty, LeaksReport: rep})
	stopDaemon()
	ok := passed && empty
	d.emit(inception.Event{Type: inception.EventDone, Passed: ok})
	if !ok {
		return 1
	}
	return 0
}

// runSuite runs one compiled suite against the daemon; its output goes to the
// console as it runs (the outer service log keeps it).
func (d *driver) runSuite(ctx context.Context, m inception.Manifest, name string, dmn *daemon.Daemon) inception.SuiteResult {
	r := inception.SuiteResult{Name: name}
	bin := filepath.Join(inception.ToolsDir, "suites", inception.SuiteBinary(name))
	work, err := os.MkdirTemp("", "suite-")
	if err != nil {
		r.Tail = err.Error()
		return r
	}
	defer os.RemoveAll(work)
	report := filepath.Join(work, "report.json")
	timeout := m.SuiteTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	args := []string{"--ginkgo.no-color", "--ginkgo.json-report=" + report, "--ginkgo.timeout=" + timeout.String()}
	if m.LabelFilter != "" {
		args = append(args, "--ginkgo.label-filter="+m.LabelFilter)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(sctx, bin, args...)
	cmd.Dir = work
	set := settings.FromDaemon(dmn)
	set.DebugSocket = dmn.Address() + ".debug" // the leak suite counts goroutines
	set.Toolchain = toolchain.System
	set.Where = "vm"
	set.Orchd = filepath.Join(inception.ToolsDir, "orchd")
	set.Images = filepath.Join(inception.ToolsDir, "images")
	cmd.Env = append(append(os.Environ(), set.Environ()...),
		inception.EnvMemory+"="+m.Memory,
		inception.EnvCPUs+"="+m.CPUs,
	)
	var tail tailBuffer
	cmd.Stdout = io.MultiWriter(d.out, &tail)
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 10 * time.Second
	d.logf("suite %s: running", name)
	start := time.Now()
	err = cmd.Run()
	r.Duration = time.Since(start).Round(time.Millisecond)
	r.ExitCode = cmd.ProcessState.ExitCode()
	if err != nil && r.ExitCode == 0 {
		r.ExitCode = -1
	}
	countSpecs(report, &r)
	r.Passed = err == nil && r.Failed == 0 && r.Specs > 0
	if !r.Passed {
		r.Tail = tail.String()
		if r.Specs == 0 && err == nil {
			r.Tail = "no specs ran\n" + r.Tail
		}
	}
	return r
}

func countSpecs(path string, r *inception.SuiteResult) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return
	}
	for _, rep := range reports {
		for _, s := range rep.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				continue
			}
			if s.State == types.SpecStateSkipped || s.State == types.SpecStatePending {
				continue
			}
			r.Specs++
			if s.State.Is(types.SpecStateFailureStates) {
				r.Failed++
				r.Failures = append(r.Failures, s.FullText())
			}
		}
		// Suite-level failures (BeforeSuite) have no It.
		if !rep.SuiteSucceeded && r.Failed == 0 {
			r.Failed = 1
			r.Failures = append(r.Failures, strings.Join(rep.SpecialSuiteFailureReasons, "; "))
		}
	}
}

// inspect checks every namespace the daemon knows for leftovers.
func inspect(ctx context.Context, dmn *daemon.Daemon) (bool, string, error) {
	c, err := dmn.Client()
	if err != nil {
		return false, "", err
	}
	defer c.Close()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return false, "", fmt.Errorf("list namespaces: %w", err)
	}
	empty := true
	var buf strings.Builder
	for _, ns := range nss {
		rep, err := leaks.Inspect(ctx, leaks.Target{Address: dmn.Address(), Namespace: ns, Root: dmn.Root(), State: dmn.State()})
		if err != nil {
			return false, "", fmt.Errorf("inspect %s: %w", ns, err)
		}
		if !rep.Empty() {
			empty = false
			fmt.Fprintf(&buf, "namespace %s:\n%s\n", ns, rep.String())
		}
	}
	return empty, buf.String(), nil
}

// guestEnv measures the VM: kernel, cgroup mode, memory, CPUs, the tools mount.
func guestEnv() inception.GuestEnv {
	var e inception.GuestEnv
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	var st unix.Statfs_t
	switch {
	case unix.Statfs("/sys/fs/cgroup", &st) != nil:
		e.CgroupMode = "none"
	case st.Type == unix.CGROUP2_SUPER_MAGIC:
		e.CgroupMode = "v2"
	default:
		e.CgroupMode = "v1"
		if unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			e.CgroupMode = "hybrid"
		}
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				e.MemTotalKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			}
		}
		f.Close()
	}
	e.CPUs = runtime.NumCPU()
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 8 && f[4] == inception.ToolsDir {
				if i := indexOf(f, "-"); i > 0 && i+1 < len(f) {
					e.ToolsFSType = f[i+1]
				}
			}
		}
	}
	return e
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// tailBuffer keeps the last 8 KiB written.
type tailBuffer struct{ b []byte }

const tailMax = 8 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = t.b[len(t.b)-tailMax:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	if i := bytes.IndexByte(t.b, '\n'); i >= 0 && len(t.b) == tailMax {
		return string(t.b[i+1:])
	}
	return string(t.b)
}
