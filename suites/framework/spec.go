package framework

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/orchd/orchd/fixtures/probe/report"
	"github.com/orchd/orchd/harness/cycles"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/supervise"
)

// Row is one `orchd survey --json` row.
type Row = platform.ServiceStatus

// Spec is one spec's private world: namespace, dirs and the orchd CLI bound to them.
type Spec struct {
	fw *Framework
	// Namespace is unique per spec: s<process>-<random>.
	Namespace string
	// Dir holds state/, project/ and home/; removed after the spec.
	Dir        string
	StateDir   string
	ProjectDir string
	DataDir    string
	CLI        cycles.CLI
	Layout     contract.Layout

	felled bool
	timing *timing
}

// NewSpec creates the spec's namespace and dirs and registers cleanup: on
// failure the orchd and daemon logs are attached to the report; then
// everything is felled and force-cleaned. Call it from a BeforeEach.
func (f *Framework) NewSpec() *Spec {
	ns := fmt.Sprintf("s%d-%s", GinkgoParallelProcess(), randHex(4))
	dir, err := os.MkdirTemp("", "orchd-"+ns+"-")
	Expect(err).NotTo(HaveOccurred())
	s := &Spec{
		fw:         f,
		Namespace:  ns,
		Dir:        dir,
		StateDir:   filepath.Join(dir, "state"),
		ProjectDir: filepath.Join(dir, "project"),
		// orchd's default: <state>/data/<namespace>.
		DataDir: filepath.Join(dir, "state", "data", ns),
	}
	for _, d := range []string{s.StateDir, s.ProjectDir} {
		Expect(os.MkdirAll(d, 0o700)).To(Succeed())
	}
	s.Layout = contract.Layout{StateDir: s.StateDir}
	s.CLI = cycles.CLI{
		Orchd:      f.Orchd,
		Address:    f.Daemon.Address,
		Namespace:  ns,
		StateDir:   s.StateDir,
		ProjectDir: s.ProjectDir,
		Home:       filepath.Join(dir, "home"),
	}
	s.timing = newTiming()
	s.CLI.Observe = s.timing.observe
	// Polls that find nothing changed cost no survey (see cycles.SurveyCache).
	s.CLI.Surveys = cycles.NewSurveyCache(s.StateDir, Scaled(time.Second))
	if f.shared.OCIBinary != "" {
		s.CLI.Env = append(s.CLI.Env, EnvOCIRuntime+"="+f.shared.OCIBinary)
	}
	By(fmt.Sprintf("namespace %s, state %s", ns, s.StateDir))
	// Cleanups run last-registered first: the report is collected before the teardown.
	DeferCleanup(s.cleanup, NodeDeadline(3*time.Minute))
	DeferCleanup(s.attachOnFailure, NodeDeadline(time.Minute))
	return s
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// Image returns the FROM value of a fixture image (probe, probe-user, probe-layers).
func (s *Spec) Image(name string) string { return s.fw.Image(name) }

// Label is the platform label of a service in this spec's namespace.
func (s *Spec) Label(svc string) string { return contract.Label(s.Namespace, svc) }

// WriteOrchfile writes the project's Orchfile.
func (s *Spec) WriteOrchfile(text string) {
	GinkgoHelper()
	Expect(s.CLI.WriteOrchfile(text)).To(Succeed())
	AddReportEntry("Orchfile", text, ReportEntryVisibilityFailureOrVerbose)
}

// WriteFile writes a file relative to the project dir (env files, volume content).
func (s *Spec) WriteFile(rel, content string) string {
	GinkgoHelper()
	p := filepath.Join(s.ProjectDir, rel)
	Expect(os.MkdirAll(filepath.Dir(p), 0o700)).To(Succeed())
	Expect(os.WriteFile(p, []byte(content), 0o600)).To(Succeed())
	return p
}

// Orchd runs `orchd SUB ARGS...` with this spec's namespace, dirs, runtime
// containerd, platform orchdi and the daemon's socket. A non-zero exit is in
// the result; failing to run at all fails the spec.
func (s *Spec) Orchd(ctx context.Context, sub string, args ...string) cycles.Invocation {
	GinkgoHelper()
	res, err := s.CLI.Run(ctx, sub, args...)
	Expect(err).NotTo(HaveOccurred(), "%s", res)
	fmt.Fprintf(GinkgoWriter, "orchd %s -> exit %d (%s)\n", sub, res.ExitCode, res.Duration.Round(time.Millisecond))
	return res
}

// Grow runs `orchd grow [SERVICE...]` and expects success.
func (s *Spec) Grow(ctx context.Context, services ...string) cycles.Invocation {
	GinkgoHelper()
	res := s.Orchd(ctx, "grow", services...)
	Expect(res.ExitCode).To(BeZero(), "%s", res)
	return res
}

// Fell runs `orchd fell` and expects success; afterwards nothing may remain.
func (s *Spec) Fell(ctx context.Context) cycles.Invocation {
	GinkgoHelper()
	res := s.Orchd(ctx, "fell")
	Expect(res.ExitCode).To(BeZero(), "%s", res)
	s.felled = true
	return res
}

// Survey runs `orchd survey --json`.
func (s *Spec) Survey(ctx context.Context) []Row {
	GinkgoHelper()
	rows, err := s.CLI.Survey(ctx)
	Expect(err).NotTo(HaveOccurred())
	return rows
}

// trySurvey is Survey for polling functions (reports through g).
func (s *Spec) trySurvey(ctx context.Context, g Gomega) []Row {
	rows, err := s.CLI.Survey(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	return rows
}

// FindRow returns svc's row in rows.
func FindRow(rows []Row, svc string) (Row, bool) {
	for _, r := range rows {
		if r.Name == svc {
			return r, true
		}
	}
	return Row{}, false
}

// EventuallyRow polls survey until check passes for svc's row and returns that row.
func (s *Spec) EventuallyRow(ctx context.Context, svc string, check func(g Gomega, r Row)) Row {
	GinkgoHelper()
	var got Row
	Eventually(ctx, func(g Gomega) {
		r, ok := FindRow(s.trySurvey(ctx, g), svc)
		g.Expect(ok).To(BeTrue(), "service %s not in survey", svc)
		check(g, r)
		got = r
	}).Should(Succeed(), "service %s", svc)
	return got
}

// EventuallyState polls survey until svc reports state; a running container
// must also report its container id and a RUNNING task.
func (s *Spec) EventuallyState(ctx context.Context, svc, state string) Row {
	GinkgoHelper()
	return s.EventuallyRow(ctx, svc, func(g Gomega, r Row) {
		StopIfFailed(r, state)
		g.Expect(r.State).To(Equal(state), "state of %s (message %q)", svc, r.Message)
		if state == contract.StateRunning {
			g.Expect(r.ContainerID).NotTo(BeEmpty(), "container id of %s", svc)
			g.Expect(strings.ToLower(r.TaskStatus)).To(Equal("running"), "task of %s", svc)
		}
	})
}

// StopIfFailed ends an Eventually early when r reached the terminal state
// failed while another state is awaited: a supervisor that gave up does not
// come back, so polling on would only hide the message.
func StopIfFailed(r Row, want string) {
	if r.State == contract.StateFailed && want != contract.StateFailed {
		StopTrying(fmt.Sprintf("%s is failed (waiting for %s): %s", r.Name, want, r.Message)).Now()
	}
}

// Logs returns `orchd logs --no-log-prefix SVC`: the service's output as written.
func (s *Spec) Logs(ctx context.Context, svc string) string {
	GinkgoHelper()
	res := s.Orchd(ctx, "logs", "--no-log-prefix", svc)
	Expect(res.ExitCode).To(BeZero(), "%s", res)
	return res.Stdout
}

// probeMount is where a spec's probe report dir is mounted in a container.
const probeMount = "/probe-report"

// ProbeOut returns what makes svc's probe write its report to a file the
// spec reads: the VOLUME line for the service block and the report
// argument ("--out FILE"). A file cannot be split by the service's stderr,
// as the report line in the service log can.
func (s *Spec) ProbeOut(svc string) (volume, arg string) {
	GinkgoHelper()
	dir := filepath.Join(s.Dir, "probe-report")
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	// World-writable and sticky: the probe may run as the image's user.
	Expect(os.Chmod(dir, 0o1777)).To(Succeed())
	return fmt.Sprintf("VOLUME %s:%s\n", dir, probeMount), "--out " + probeMount + "/" + svc + ".json"
}

// ProbeReport waits for the report file svc's probe writes (see ProbeOut).
func (s *Spec) ProbeReport(ctx context.Context, svc string) *report.Report {
	GinkgoHelper()
	path := filepath.Join(s.Dir, "probe-report", svc+".json")
	var rep *report.Report
	Eventually(ctx, func(g Gomega) {
		b, err := os.ReadFile(path)
		if err != nil {
			s.stopIfEnded(svc, path)
		}
		g.Expect(err).NotTo(HaveOccurred(), "the probe's report file (written whole, then renamed into place)")
		rep, err = report.Parse(b)
		g.Expect(err).NotTo(HaveOccurred(), "report file %s", path)
	}).Should(Succeed(), "probe report of %s", svc)
	Expect(rep.Errors).To(BeEmpty(), "the probe in %s could not read everything", svc)
	return rep
}

// stopIfEnded ends a wait for svc's report file early when svc's supervisor
// reached a final state and the file is still missing: it will never come,
// and the status message (a runtime's refusal, say) is the useful failure.
func (s *Spec) stopIfEnded(svc, path string) {
	st, err := supervise.ReadStatus(s.Layout.StatusFile(s.Label(svc)))
	if err != nil || !supervise.Final(st.State) {
		return
	}
	if _, err := os.Stat(path); err == nil {
		return // written just before the end
	}
	StopTrying(fmt.Sprintf("%s ended (%s, exit %s) without writing its report %s: %s", svc, st.State, exitOf(st), path, st.Message)).Now()
}

func exitOf(st contract.Status) string {
	if st.ExitCode == nil {
		return "none"
	}
	return fmt.Sprint(*st.ExitCode)
}

// cleanup fells what is left, then force-cleans processes, containerd
// objects and dirs, so a failed spec does not poison the next one.
func (s *Spec) cleanup(ctx SpecContext) {
	defer func() {
		fmt.Fprintf(GinkgoWriter, "%s: %s; survey answered from the cache %dx\n", s.Namespace, s.timing, s.CLI.Surveys.Hits())
		s.CLI.Surveys.Close()
	}()
	if !s.felled {
		res, err := s.CLI.Run(ctx, "fell")
		if err != nil || res.ExitCode != 0 {
			fmt.Fprintf(GinkgoWriter, "cleanup fell of %s: %v\n%s\n", s.Namespace, err, res)
		}
	}
	killSupervisors(s.StateDir)
	start := time.Now()
	if err := s.fw.forceClean(ctx, s.Namespace, s.StateDir); err != nil {
		fmt.Fprintf(GinkgoWriter, "cleanup of %s: %v\n", s.Namespace, err)
	}
	s.timing.since("clean-up (leak clean, namespace delete)", start)
	Expect(os.RemoveAll(s.Dir)).To(Succeed())
}

// killSupervisors SIGKILLs, with their process groups, supervisors whose pid
// files are in stateDir and whose command line still names stateDir.
func killSupervisors(stateDir string) {
	pids, _ := filepath.Glob(filepath.Join(stateDir, "run", "*.pid"))
	for _, pf := range pids {
		b, err := os.ReadFile(pf)
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d", &pid); err != nil || pid <= 1 {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), stateDir) {
			continue
		}
		fmt.Fprintf(GinkgoWriter, "cleanup: killing leftover supervisor %d (%s)\n", pid, pf)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// attachOnFailure adds the orchd logs, the survey and the daemon's log tail
// to a failed spec's report.
func (s *Spec) attachOnFailure(ctx SpecContext) {
	if !CurrentSpecReport().Failed() {
		return
	}
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(s.Layout.LogDir(), "*"))
	sort.Strings(logs)
	for _, l := range logs {
		fmt.Fprintf(&b, "==> %s <==\n%s\n", l, tailFile(l, 80))
	}
	statuses, _ := filepath.Glob(filepath.Join(s.Layout.StatusDir(), "*"))
	for _, st := range statuses {
		fmt.Fprintf(&b, "==> %s <==\n%s\n", st, tailFile(st, 20))
	}
	if res, err := s.CLI.Run(ctx, "survey"); err == nil {
		fmt.Fprintf(&b, "==> orchd survey <==\n%s%s\n", res.Stdout, res.Stderr)
	}
	AddReportEntry("orchd logs ("+s.Namespace+")", b.String(), ReportEntryVisibilityFailureOrVerbose)
	AddReportEntry("containerd log tail", s.fw.DaemonLogTail(100), ReportEntryVisibilityFailureOrVerbose)
}
