package inception

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/orchd/orchd/harness/cycles"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/suiterun"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/logline"
	"github.com/orchd/orchd/orchd/runtime/vm/kernel"
	"github.com/orchd/orchd/orchd/supervise"
)

// Defaults of an inception run.
const (
	DefaultMemory  = "2G"
	DefaultCPUs    = "2"
	DefaultTimeout = 30 * time.Minute
	// DefaultSuiteTimeout bounds each inner suite (before the time scale).
	DefaultSuiteTimeout = 10 * time.Minute
	// DefaultLabelFilter leaves out, inside the VM, the specs labelled slow
	// (fanout of 24 services, the long leak cycles); the report lists them as
	// skipped and the run says so. --label-filter "" runs everything.
	DefaultLabelFilter = "!slow"
	// DefaultTimeScale stretches every suite deadline inside the VM: TCG runs
	// the guest several times slower than the host.
	DefaultTimeScale = 3
	// DefaultStall is how long the run may show no progress (no console line,
	// no byte written to the shared reports) before it is declared stalled. It
	// must exceed the longest silence of a spec at DefaultTimeScale: a failing
	// Eventually (90 s x 3) and then its cleanup (fell, bounded by 3 min x 3)
	// write nothing; 6 minutes fired on such a failing spec under crun.
	DefaultStall = 15 * time.Minute
	// DefaultJobs is how many suites run at once inside the VM: two suites
	// overlap their waits (grace periods, restart delays, Consistently
	// windows, poll intervals); leak still runs alone.
	DefaultJobs = 2
	Namespace   = "inception"
	ServiceName = "inception"
)

// DefaultSuites are the suites run inside the VM when none are named: the
// in-VM checks, then the core suites, the same compiled specs as on the host.
func DefaultSuites() []string {
	return []string{"inception/inner", "fanout", "oneshot", "crashrestart", "specalign", "leak"}
}

// Options configure Run.
type Options struct {
	// Work holds tools, image, project and state; "" = a new temp dir removed
	// at the end (kept on failure when Keep is set).
	Work string
	Keep bool
	// Containerd is the toolchain staged into the VM (toolchain.System by default).
	Containerd string
	// Suites are package paths under suites/ ("inception/inner", "fanout", ...).
	Suites       []string
	LabelFilter  string
	SuiteTimeout time.Duration
	Memory       string // MEMORY of the outer service
	CPUs         string // CPUS of the outer service
	// Timeout bounds the VM run (boot to power-off).
	Timeout time.Duration
	// ModuleRoot is the orchd source tree (found from the working dir when "").
	ModuleRoot string
	// Progress receives human progress lines; nil = silent.
	Progress io.Writer
	// Init is the guest's PID 1: InitOrchd (default) or InitSystemd.
	Init string
	// ReportDir receives every suite's JUnit, JSON, log and environment
	// files as written inside the VM, the merged junit.xml and summary.json
	// ("" = they stay in the work dir).
	ReportDir string
	// OCIRuntime is the runc-compatible binary the inner containerd runs
	// containers with: runc (default) or crun.
	OCIRuntime string
	// TimeScale stretches every suite deadline (ORCHD_TIME_SCALE); 0 = DefaultTimeScale.
	TimeScale float64
	// Stall fails the run when nothing progresses for this long; 0 = DefaultStall.
	Stall time.Duration
	// Jobs is how many suites run at once inside the VM; 0 = DefaultJobs.
	Jobs int
}

// Result is what an inception run found.
type Result struct {
	Work        string            `json:"work"`
	Env         *GuestEnv         `json:"env,omitempty"`
	Suites      []suiterun.Result `json:"suites"`
	ReportDir   string            `json:"report_dir"`
	LabelFilter string            `json:"label_filter,omitempty"`
	InnerClean  bool              `json:"inner_clean"`
	InnerLeaks  string            `json:"inner_leaks,omitempty"`
	OuterLeaks  []string          `json:"outer_leaks,omitempty"`
	DriverDone  bool              `json:"driver_done"`
	DriverPass  bool              `json:"driver_passed"`
	Message     string            `json:"message,omitempty"`
	StageTime   time.Duration     `json:"stage_time"`
	RunTime     time.Duration     `json:"run_time"`
	ServiceLog  string            `json:"service_log"`
	Orchfile    string            `json:"orchfile"`
	MemoryMiB   int64             `json:"memory_mib"`
	CPUs        int               `json:"cpus"`
	ToolsSource string            `json:"tools_source"`
	OCIRuntime  string            `json:"oci_runtime"`
}

// Passed is the verdict, from the report files only: every suite's report
// shows it passed, the driver finished, and nothing leaked inside or outside
// the VM.
func (r *Result) Passed() bool {
	if !r.DriverDone || !r.DriverPass || !r.InnerClean || len(r.OuterLeaks) > 0 || len(r.Suites) == 0 {
		return false
	}
	for _, s := range r.Suites {
		if !s.OK {
			return false
		}
	}
	return true
}

type runner struct {
	o   Options
	out io.Writer
}

func (r *runner) progress(format string, a ...any) {
	fmt.Fprintf(r.out, "inception: "+format+"\n", a...)
}

// Run stages the toolchain, kernel, tools and image, boots the inception VM
// with `orchd --runtime vm --platform orchdi grow`, follows its console until
// the driver is done, fells the grove and checks that nothing is left.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	if o.Containerd == "" {
		o.Containerd = toolchain.System
	}
	if len(o.Suites) == 0 {
		o.Suites = DefaultSuites()
	}
	if o.Memory == "" {
		o.Memory = DefaultMemory
	}
	if o.CPUs == "" {
		o.CPUs = DefaultCPUs
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	switch o.Init {
	case "", InitOrchd:
		o.Init = InitOrchd
	case InitSystemd:
	default:
		return nil, fmt.Errorf("inception: --init %q: want %s or %s", o.Init, InitOrchd, InitSystemd)
	}
	if o.SuiteTimeout <= 0 {
		o.SuiteTimeout = DefaultSuiteTimeout
	}
	if o.TimeScale == 0 {
		o.TimeScale = DefaultTimeScale
	}
	if o.TimeScale < 1 {
		return nil, fmt.Errorf("inception: --time-scale %v: want 1 or more", o.TimeScale)
	}
	if o.Stall <= 0 {
		o.Stall = DefaultStall
	}
	if o.Jobs <= 0 {
		o.Jobs = DefaultJobs
	}
	switch o.OCIRuntime {
	case "":
		o.OCIRuntime = "runc"
	case "runc", "crun":
	default:
		return nil, fmt.Errorf("inception: --oci-runtime %q: want runc or crun (runsc runs on the host: orchd-harness suites --oci-runtime runsc)", o.OCIRuntime)
	}
	r := &runner{o: o, out: o.Progress}
	if r.out == nil {
		r.out = io.Discard
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return nil, errors.New("inception needs qemu-system-x86_64: apt-get install -y qemu-system-x86")
	}
	res = &Result{LabelFilter: o.LabelFilter, OCIRuntime: o.OCIRuntime}
	work := o.Work
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "orchd-inception-"); err != nil {
			return nil, fmt.Errorf("inception: %w", err)
		}
	}
	work, _ = filepath.Abs(work)
	res.Work = work
	// A temp work dir goes whatever happened (a failed stage, a killed qemu or
	// supervisor included), unless --keep asked to keep a failing run's.
	defer func() {
		if o.Work == "" && !(o.Keep && (err != nil || !res.Passed())) {
			os.RemoveAll(work)
		}
	}()
	start := time.Now()
	k, tools, imageRef, err := r.stage(ctx, work, res)
	res.StageTime = time.Since(start).Round(time.Millisecond)
	if err != nil {
		return res, err
	}
	r.progress("staged in %v", res.StageTime)
	start = time.Now()
	err = r.boot(ctx, work, k, tools, imageRef, res)
	res.RunTime = time.Since(start).Round(time.Millisecond)
	if cerr := r.collect(filepath.Join(work, "reports"), res); cerr != nil && err == nil {
		err = cerr
	}
	// A temp work dir goes whatever happened (a killed qemu or supervisor
	// included), unless --keep asked to keep a failing run's.
	if o.Work == "" && !(o.Keep && (err != nil || !res.Passed())) {
		os.RemoveAll(work)
	}
	return res, err
}

// stage prepares kernel, tools dir and image.
func (r *runner) stage(ctx context.Context, work string, res *Result) (kernel.Kernel, string, string, error) {
	var k kernel.Kernel
	r.progress("staging containerd toolchain %q", r.o.Containerd)
	tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: r.o.Containerd, Progress: r.out})
	if err != nil {
		return k, "", "", fmt.Errorf("toolchain: %w", err)
	}
	res.ToolsSource = fmt.Sprintf("containerd %s (%s), runc %s", tc.Containerd.Version, tc.Containerd.Path, tc.Runc.Version)
	r.progress("toolchain: %s", res.ToolsSource)
	r.progress("staging the guest kernel")
	if k, err = kernel.Resolve(ctx, r.out); err != nil {
		return k, "", "", fmt.Errorf("kernel: %w", err)
	}

	tools := filepath.Join(work, "tools")
	if err := os.RemoveAll(tools); err != nil {
		return k, "", "", err
	}
	for _, d := range []string{"bin", "suites", "images"} {
		if err := os.MkdirAll(filepath.Join(tools, d), 0o755); err != nil {
			return k, "", "", err
		}
	}
	// The guest writes its reports here (a second 9p share): fresh every run.
	if err := os.RemoveAll(filepath.Join(work, "reports")); err != nil {
		return k, "", "", err
	}
	if err := os.MkdirAll(filepath.Join(work, "reports"), 0o755); err != nil {
		return k, "", "", err
	}
	var bins []string
	for _, c := range []toolchain.Component{tc.Containerd, tc.Shim, tc.Ctr, tc.Runc} {
		dst := filepath.Join(tools, "bin", c.Name)
		if c.Name == "" {
			dst = filepath.Join(tools, "bin", filepath.Base(c.Path))
		}
		if err := copyFile(c.Path, dst, 0o755); err != nil {
			return k, "", "", fmt.Errorf("copy %s: %w", c.Path, err)
		}
		bins = append(bins, dst)
	}
	if r.o.OCIRuntime != "runc" {
		// crun refuses this host's hybrid cgroups; it runs inside the VM
		// (cgroup v2), from the host's package.
		src, err := exec.LookPath(r.o.OCIRuntime)
		if err != nil {
			return k, "", "", fmt.Errorf("--oci-runtime %s: not installed on the host (apt-get install -y %s): %w", r.o.OCIRuntime, r.o.OCIRuntime, err)
		}
		dst := filepath.Join(tools, "bin", r.o.OCIRuntime)
		if err := copyFile(src, dst, 0o755); err != nil {
			return k, "", "", fmt.Errorf("copy %s: %w", src, err)
		}
		bins = append(bins, dst)
	}

	root := r.o.ModuleRoot
	if root == "" {
		if root, err = gobuild.ModuleRoot(ctx); err != nil {
			return k, "", "", err
		}
	}
	r.progress("building static orchd, orchd-supervise and the in-VM driver")
	if _, err := gobuild.Orchd(ctx, root, tools); err != nil {
		return k, "", "", err
	}
	if err := gobuild.StaticBinary(ctx, root, "./inception/driver", filepath.Join(tools, "driver")); err != nil {
		return k, "", "", err
	}
	for _, s := range r.o.Suites {
		if _, err := os.Stat(filepath.Join(root, "suites", s)); err != nil {
			return k, "", "", fmt.Errorf("suite %s: %w", s, err)
		}
	}
	r.progress("compiling suites %s (go test -c)", strings.Join(r.o.Suites, ", "))
	if _, err := gobuild.Suites(ctx, root, filepath.Join(tools, "suites"), gobuild.SuiteOptions{Tags: []string{"inception"}, Static: true}, r.o.Suites...); err != nil {
		return k, "", "", err
	}
	r.progress("building fixture images")
	if _, err := images.Build(ctx, filepath.Join(tools, "images"), images.WithModuleRoot(root)); err != nil {
		return k, "", "", err
	}
	m := Manifest{Suites: r.o.Suites, SuiteTimeout: time.Duration(float64(r.o.SuiteTimeout) * r.o.TimeScale), LabelFilter: r.o.LabelFilter,
		Memory: r.o.Memory, CPUs: r.o.CPUs, OCIRuntime: r.o.OCIRuntime, TimeScale: r.o.TimeScale, Jobs: r.o.Jobs}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := os.WriteFile(filepath.Join(tools, "manifest.json"), mb, 0o644); err != nil {
		return k, "", "", err
	}

	var extra ImageExtra
	if r.o.Init == InitSystemd {
		r.progress("staging Debian's systemd for the guest's PID 1")
		t, err := StageSystemd(ctx, r.out)
		if err != nil {
			return k, "", "", err
		}
		bins = append(bins, t.Binaries...)
		extra = systemdImage(t)
	}
	r.progress("building the inception image (minimal root + shared libraries of the toolchain)")
	libs, err := LibraryClosure(ctx, bins...)
	if err != nil {
		return k, "", "", err
	}
	ref, err := BuildImageWith(filepath.Join(work, "image"), libs, extra)
	if err != nil {
		return k, "", "", err
	}
	return k, tools, ref, nil
}

// Orchfile is the outer Orchfile. The service is a oneshot that runs the whole
// suite run, so TIMEOUT_START (which bounds a running oneshot) is the run's
// bound. tools is shared at ToolsDir, reports at ReportsDir.
func Orchfile(imageRef, tools, reports, memory, cpus string, timeout time.Duration) string {
	return fmt.Sprintf(`# The inception VM: containerd and the suites run inside.
SERVICE %s
FROM %s
MEMORY %s
CPUS %s
VOLUME %s:%s
VOLUME %s:%s
ONESHOT true
TIMEOUT_START %ds
TIMEOUT_STOP 30s
`, ServiceName, imageRef, memory, cpus, tools, ToolsDir, reports, ReportsDir, int(timeout.Seconds()))
}

func (r *runner) orchd(tools, project, state string, k kernel.Kernel) cycles.CLI {
	return cycles.CLI{
		Orchd: filepath.Join(tools, "orchd"), Namespace: Namespace, StateDir: state, ProjectDir: project,
		Runtime: "vm", Platform: "orchdi",
		Env: []string{kernel.EnvKernel + "=" + k.Vmlinuz, kernel.EnvModules + "=" + k.ModulesDir},
	}
}

// boot grows the outer grove, follows the console and fells it.
func (r *runner) boot(ctx context.Context, work string, k kernel.Kernel, tools, imageRef string, res *Result) error {
	project := filepath.Join(work, "project")
	state := filepath.Join(work, "state")
	if err := os.MkdirAll(project, 0o755); err != nil {
		return err
	}
	_ = os.RemoveAll(state)
	startBound := r.o.Timeout
	if r.o.Init == InitSystemd && startBound < 30*time.Minute {
		// The systemd guest boots a bigger initramfs under TCG before the
		// suites even start.
		startBound = 30 * time.Minute
	}
	res.Orchfile = Orchfile(imageRef, tools, filepath.Join(work, "reports"), r.o.Memory, r.o.CPUs, startBound)
	if err := os.WriteFile(filepath.Join(project, "Orchfile"), []byte(res.Orchfile), 0o644); err != nil {
		return err
	}
	layout := contract.Layout{StateDir: state}
	label := contract.Label(Namespace, ServiceName)
	res.ServiceLog = layout.LogFile(label)

	// Held until after the fell below (defers run last-in first-out).
	unlock, err := lockVM(ctx, r.progress)
	if err != nil {
		return err
	}
	defer unlock()

	// fell always runs, even when ctx is done, so nothing outlives the run.
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r.progress("felling the outer grove")
		inv, err := r.orchd(tools, project, state, k).Run(fctx, "fell")
		if err == nil {
			err = inv.Err()
		}
		if err != nil {
			res.OuterLeaks = append(res.OuterLeaks, fmt.Sprintf("fell failed: %v", err))
		}
		res.OuterLeaks = append(res.OuterLeaks, outerLeaks(work, state)...)
	}()

	r.progress("booting the inception VM (MEMORY %s, CPUS %s): orchd --runtime vm --platform orchdi grow", r.o.Memory, r.o.CPUs)
	rctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	inv, err := r.orchd(tools, project, state, k).Run(rctx, "grow")
	if err == nil {
		err = inv.Err()
	}
	if err != nil {
		return fmt.Errorf("orchd grow: %w", err)
	}
	return r.follow(rctx, layout, label, filepath.Join(work, "reports"), res)
}

// follow reads the service log as it grows, printing progress, until the
// driver's done line or the end of the service. Console lines and bytes
// written to the shared reports dir count as progress; none for r.o.Stall
// fails the run with the console's tail. The verdict is not taken here: it
// comes from the report files (collect), so the service's end is a normal end.
func (r *runner) follow(ctx context.Context, layout contract.Layout, label, reports string, res *Result) error {
	var off int64
	var partial []byte
	var lines logline.Assembler
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	booted := false
	last, shared := time.Now(), sharedBytes(reports)
	for {
		b, err := readFrom(layout.LogFile(label), off)
		if err == nil && len(b) > 0 {
			off += int64(len(b))
			last = time.Now()
			partial = append(partial, b...)
			for {
				i := bytes.IndexByte(partial, '\n')
				if i < 0 {
					break
				}
				// The service log is logline records: join a line's
				// partial records before looking at it.
				line, whole := lines.Add(partial[:i])
				partial = partial[i+1:]
				if !whole {
					continue
				}
				if !booted && bytes.Contains(line.Text, []byte("vm: service process started")) {
					booted = true
					r.progress("guest up; the driver is running")
				}
				ev, ok, perr := ParseLine(line.Text)
				if !ok || perr != nil {
					continue
				}
				if r.handle(ev, res) {
					return nil
				}
			}
		}
		if n := sharedBytes(reports); n != shared {
			shared, last = n, time.Now()
		}
		if time.Since(last) > r.o.Stall {
			return fmt.Errorf("inception: stalled: no console line and no report written for %v; console tail (%s):\n%s",
				r.o.Stall, layout.LogFile(label), tailOf(layout.LogFile(label), 40))
		}
		if st, err := readStatus(layout.StatusFile(label)); err == nil && (st.State == contract.StateExited || st.State == contract.StateFailed) {
			// One more read so the last lines are not missed.
			if b, _ := readFrom(layout.LogFile(label), off); len(b) > 0 {
				for _, phys := range bytes.Split(append(partial, b...), []byte("\n")) {
					line, whole := lines.Add(phys)
					if !whole {
						continue
					}
					if ev, ok, perr := ParseLine(line.Text); ok && perr == nil && r.handle(ev, res) {
						return nil
					}
				}
			}
			// Not an error here: the verdict comes from the files, and a
			// driver that never finished left no driver.json.
			r.progress("the inception service ended (%s, exit %v) without a done line; console tail (%s):\n%s",
				st.State, exitCode(st), layout.LogFile(label), tailOf(layout.LogFile(label), 40))
			return nil
		}
		// A supervisor killed mid-run leaves a non-final status behind; its
		// service (and qemu) die with it, so waiting longer is pointless.
		if st, err := readStatus(layout.StatusFile(label)); err == nil && !supervise.Final(st.State) &&
			st.SupervisorPid > 0 && !supervise.Alive(st.SupervisorPid, layout.UnitFile(label)) {
			return fmt.Errorf("the inception service's supervisor (pid %d) died before the driver reported done; see %s", st.SupervisorPid, layout.LogFile(label))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("inception: %w before the driver reported done; console tail (%s):\n%s", ctx.Err(), layout.LogFile(label), tailOf(layout.LogFile(label), 40))
		case <-tick.C:
		}
	}
}

func exitCode(st *contract.Status) string {
	if st.ExitCode == nil {
		return "?"
	}
	return strconv.Itoa(*st.ExitCode)
}

// handle prints one event as progress; it returns true on the last one.
func (r *runner) handle(ev Event, res *Result) bool {
	switch ev.Type {
	case EventLog:
		r.progress("guest: %s", ev.Message)
	case EventEnv:
		res.Env = ev.Env
	case EventSuite:
		if s := ev.Suite; s != nil {
			r.progress("suite %s: finished in %v (%d specs, %d failed; the verdict comes from its report files)", s.Name, s.Duration, s.Specs, s.Failed)
		}
	case EventDone:
		return true
	}
	return false
}

func readFrom(path string, off int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

func readStatus(path string) (*contract.Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st contract.Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// outerLeaks lists what the run left on the host: qemu processes naming the
// work dir, processes of the tools' orchd, and vm-run scratch dirs.
func outerLeaks(work, state string) []string {
	var out []string
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		cmdline := strings.Join(args, " ")
		// Only what the run itself starts: qemu, and the tools' orchd (supervisors, leaves).
		isQemu := strings.HasPrefix(filepath.Base(args[0]), "qemu-system") && strings.Contains(cmdline, work)
		isOrchd := strings.HasPrefix(args[0], filepath.Join(work, "tools")+"/")
		if isQemu || isOrchd {
			if syscall.Kill(pid, 0) == nil {
				out = append(out, fmt.Sprintf("process %d: %s", pid, cmdline))
			}
		}
	}
	if m, _ := filepath.Glob(filepath.Join(contract.Layout{StateDir: state}.RunDir(), "*.vm.d")); len(m) > 0 {
		out = append(out, "vm-run scratch dirs left: "+strings.Join(m, " "))
	}
	return out
}

// PrintTable writes the per-suite table (from the report files) and the
// facts of the run.
func PrintTable(w io.Writer, res *Result) {
	suiterun.PrintSummary(w, suiterun.Summary{Suites: res.Suites, Duration: res.RunTime, OK: res.Passed()}, false)
	if res.LabelFilter != "" {
		fmt.Fprintf(w, "label filter %q: specs it leaves out are counted as SKIPPED above, not run\n", res.LabelFilter)
	}
	if e := res.Env; e != nil {
		fmt.Fprintf(w, "guest: kernel %s, cgroup %s, containerd %s, runc %s, OCI runtime %s, %d MiB, %d cpus, tools on %s\n",
			e.Kernel, e.CgroupMode, e.ContainerdVersion, e.RuncVersion, e.OCIRuntime, e.MemTotalKiB/1024, e.CPUs, e.ToolsFSType)
	} else {
		fmt.Fprintln(w, "guest: no environment report")
	}
	inner := "clean"
	if !res.InnerClean {
		inner = "LEAKS " + strings.TrimSpace(res.InnerLeaks)
	}
	outer := "clean"
	if len(res.OuterLeaks) > 0 {
		outer = "LEAKS " + strings.Join(res.OuterLeaks, "; ")
	}
	fmt.Fprintf(w, "leaks: inside %s; outside %s\n", inner, outer)
	for _, s := range res.Suites {
		if s.OK {
			continue
		}
		fmt.Fprintf(w, "--- %s FAILED (report %s, log %s)\n", s.Suite, s.JSON, s.Log)
		if s.Error != "" {
			fmt.Fprintf(w, "    %s\n", s.Error)
		}
		for _, f := range s.Failures {
			fmt.Fprintf(w, "    failed: %s\n", f)
		}
	}
	verdict := "PASS"
	if !res.Passed() {
		verdict = "FAIL"
		if res.Message != "" {
			fmt.Fprintf(w, "driver: %s\n", res.Message)
		}
	}
	console := res.ServiceLog
	if _, err := os.Stat(console); err != nil {
		console = "removed with the work dir"
	}
	if _, err := os.Stat(res.ReportDir); err == nil {
		fmt.Fprintf(w, "reports: %s\n", res.ReportDir)
	} else {
		fmt.Fprintln(w, "reports: removed with the work dir (keep them with --report-dir)")
	}
	fmt.Fprintf(w, "inception: %s (staging %v, VM run %v; console: %s)\n", verdict, res.StageTime, res.RunTime, console)
}
