// Command driver runs inside the inception VM: it starts a private containerd
// from the tools volume, runs the compiled suites against it with the inner
// orchd, checks the daemon for leaks, and prints every result as an event line
// on the console for the outer side to read.
package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/leaks"
	"github.com/orchd/orchd/harness/settings"
	"github.com/orchd/orchd/harness/suiterun"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/inception"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	os.Exit(run(ctx, os.Stdout))
}

type driver struct {
	mu  sync.Mutex // suites run side by side (Manifest.Jobs) share out
	out io.Writer
	// orchd is the inner orchd binary the suites run.
	orchd string
}

func (d *driver) emit(e inception.Event) {
	e.Time = time.Now().UTC()
	d.mu.Lock()
	defer d.mu.Unlock()
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
	env := guestEnv()
	d.logf("kernel %s, cgroup %s, %d KiB, %d cpus, %s at %s", env.Kernel, env.CgroupMode, env.MemTotalKiB, env.CPUs, env.ToolsFSType, inception.ToolsDir)
	acct, err := startAccounting("/run/orchd-acct")
	if err != nil {
		d.logf("no CPU summary per program: %v", err)
	}
	bin, err := d.tools(ctx, m)
	if err != nil {
		return fail(err)
	}
	os.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: toolchain.System})
	if err != nil {
		return fail(fmt.Errorf("toolchain in %s: %w", bin, err))
	}
	env.ContainerdVersion, env.RuncVersion = tc.Containerd.Version, tc.Runc.Version
	env.OCIRuntime = m.OCIRuntime
	if env.OCIRuntime == "" {
		env.OCIRuntime = "runc"
	}
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

	if err := os.MkdirAll(inception.ReportsDir, 0o755); err != nil {
		return fail(fmt.Errorf("reports: %w", err))
	}
	rep := inception.DriverReport{Env: env, Suites: m.Suites}
	passed := make([]bool, len(m.Suites))
	suiterun.Schedule(m.Suites, m.Jobs, func(i int) {
		if ctx.Err() != nil {
			return
		}
		r := d.runSuite(ctx, m, m.Suites[i], dmn)
		passed[i] = r.Passed
		d.emit(inception.Event{Type: inception.EventSuite, Suite: &r})
	})
	if err := ctx.Err(); err != nil {
		rep.Message = err.Error()
	}

	empty, text, err := inspect(ctx, dmn)
	if err != nil {
		text, empty = err.Error(), false
	}
	d.emit(inception.Event{Type: inception.EventLeaks, LeaksEmpty: &empty, LeaksReport: text})
	stopDaemon()
	if acct != nil {
		d.cpuSummary(acct)
	}
	// The host reads these files for its verdict; driver.json comes last, so
	// its presence says the driver finished.
	if err := writeJSON(filepath.Join(inception.ReportsDir, inception.LeaksFile), inception.LeakReport{Empty: empty, Report: text}); err != nil {
		return fail(err)
	}
	if err := writeJSON(filepath.Join(inception.ReportsDir, inception.DriverFile), rep); err != nil {
		return fail(err)
	}
	ok := !slices.Contains(passed, false) && empty && rep.Message == ""
	d.emit(inception.Event{Type: inception.EventDone, Passed: ok, Message: rep.Message})
	if !ok {
		return 1
	}
	return 0
}

// cpuSummary logs where the guest's CPU went, per program, and writes it to
// the reports dir (CPUFile).
func (d *driver) cpuSummary(a *accounting) {
	ps, err := a.stop()
	if err != nil {
		d.logf("CPU per program: %v", err)
	}
	if len(ps) == 0 {
		return
	}
	d.logf("CPU of the processes that exited, per program:")
	for _, line := range strings.Split(cpuTable(ps, 14), "\n") {
		d.logf("  %s", line)
	}
	if err := writeJSON(filepath.Join(inception.ReportsDir, inception.CPUFile), ps); err != nil {
		d.logf("CPU per program: %v", err)
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// runSuite runs one compiled suite against the daemon. Its JUnit, JSON, log
// and environment files go to the shared reports dir; the console gets one
// progress line per spec.
func (d *driver) runSuite(ctx context.Context, m inception.Manifest, name string, dmn *daemon.Daemon) inception.SuiteResult {
	r := inception.SuiteResult{Name: name}
	work, err := os.MkdirTemp("", "suite-")
	if err != nil {
		r.Tail = err.Error()
		return r
	}
	defer os.RemoveAll(work)
	timeout := m.SuiteTimeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	// -ginkgo.v streams each spec's output into the log as it runs, so the
	// host sees progress on the share even during a long spec.
	args := []string{"-ginkgo.v"}
	if m.LabelFilter != "" {
		args = append(args, "-ginkgo.label-filter="+m.LabelFilter)
	}
	set := settings.FromDaemon(dmn)
	set.DebugSocket = dmn.Address() + ".debug" // the leak suite counts goroutines
	set.Toolchain = toolchain.System
	set.Where = "vm"
	set.Orchd = d.orchd
	set.Images = filepath.Join(inception.ToolsDir, "images")
	set.ReportDir = inception.ReportsDir // <suite>-vm-v2-...-<oci>.junit.xml/.json/.env.json
	set.OCIRuntime = m.OCIRuntime
	set.TimeScale = m.TimeScale
	sctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	d.logf("suite %s: running", name)
	cpu := readCPU()
	defer func() { d.logf("suite %s: guest CPU busy %s of the time", name, readCPU().busySince(cpu)) }()
	res := suiterun.RunBinary(sctx, suiterun.Binary{
		Name: name, Path: filepath.Join(inception.ToolsDir, "suites", inception.SuiteBinary(name)),
		Dir: work, Toolchain: toolchain.System, ReportDir: inception.ReportsDir,
		Env:  append(set.Environ(), inception.EnvMemory+"="+m.Memory, inception.EnvCPUs+"="+m.CPUs),
		Args: args, Timeout: timeout,
		Spec: func(line string) { d.logf("suite %s: %s", name, line) },
	})
	r.Duration = res.Duration.Round(time.Millisecond)
	r.Specs, r.Failed, r.Failures, r.Passed = res.Specs, res.Failed, res.Failures, res.OK
	if !res.OK {
		r.Tail = res.Error
	}
	return r
}

// localToolsDir is where the driver copies the executables (guest tmpfs).
const localToolsDir = "/run/orchd-tools"

// tools copies the executables from the share to the guest's tmpfs and logs
// what one exec of orchd and of the OCI runtime costs from each place. It
// returns the bin dir to put first on PATH and sets d.orchd.
func (d *driver) tools(ctx context.Context, m inception.Manifest) (string, error) {
	share := filepath.Join(inception.ToolsDir, "bin")
	oci := cmp.Or(m.OCIRuntime, "runc")
	d.logExecs(ctx, "9p share", filepath.Join(inception.ToolsDir, "orchd"), filepath.Join(share, oci))
	start := time.Now()
	bin, orchd, err := localTools(inception.ToolsDir, localToolsDir)
	if err != nil {
		return "", err
	}
	d.logf("copied orchd, the shim and the OCI runtime from %s to %s in %v", inception.ToolsDir, localToolsDir, time.Since(start).Round(time.Millisecond))
	d.logExecs(ctx, "tmpfs", orchd, filepath.Join(bin, oci))
	d.orchd = orchd
	return bin, nil
}

// logExecs logs the median time of one exec of each binary's --version.
func (d *driver) logExecs(ctx context.Context, where string, bins ...string) {
	var parts []string
	for _, b := range bins {
		t, err := execTime(ctx, 3, b, "--version")
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", filepath.Base(b), err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %v", filepath.Base(b), t.Round(time.Millisecond)))
	}
	d.logf("one exec (--version, median of 3) from the %s: %s", where, strings.Join(parts, ", "))
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
