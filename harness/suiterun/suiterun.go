// Package suiterun runs the conformance suites under suites/ against one private
// containerd: it builds orchd, the fixture images and every suite binary once,
// runs them (a few at a time), and writes JUnit, JSON and log files per suite plus
// summary.json.
package suiterun

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/matrix"
	"github.com/orchd/orchd/harness/ociruntime"
	"github.com/orchd/orchd/harness/settings"
	"github.com/orchd/orchd/harness/toolchain"
)

// Suites that need more than a containerd socket run through their own
// command or by name (inception and platforms boot a VM: `orchd-harness
// inception`, `--suites platforms`).
var ExcludedByDefault = []string{"inception", "platforms"}

// Suites that measure the daemon as a whole (fds, threads, goroutines) run
// alone, after the others, whatever --jobs says.
var Alone = []string{"leak"}

// imagesSetFile lists the fixture images built for the suites.
const imagesSetFile = "set.json"

// Options selects what Run runs and where it reports.
type Options struct {
	ReportDir   string        // where reports and logs are written
	Suites      []string      // suite names; empty: every suite except ExcludedByDefault
	LabelFilter string        // Ginkgo label filter
	Matrix      bool          // run against both matrix toolchains (system 1.6 and the pinned 2.x)
	OCIRuntime  string        // runc-compatible binary the runc shim runs (runc, crun, runsc); empty: runc
	Toolchain   string        // "system" or a 2.x version; empty: default resolution
	Jobs        int           // suites at once against the shared daemon
	Timeout     time.Duration // per-suite timeout
	Focus       []string      // Ginkgo focus regexps (-ginkgo.focus)
	Skip        []string      // Ginkgo skip regexps (-ginkgo.skip)
	FailFast    bool          // stop each suite at its first failure, and run no further suite
	// Address runs the suites against this existing containerd instead of a
	// private one; leak checks stay scoped to the suites' own namespaces.
	Address string
	// GinkgoArgs are passed to every suite binary as they are (after --).
	GinkgoArgs []string
}

// Check validates what can be checked before anything is staged or built:
// the label filter, the focus and skip expressions, and option combinations.
func (o Options) Check() error {
	if o.LabelFilter != "" {
		if _, err := types.ParseLabelFilter(o.LabelFilter); err != nil {
			return fmt.Errorf("suites: --label-filter %q: %w", o.LabelFilter, err)
		}
	}
	for _, re := range append(slices.Clone(o.Focus), o.Skip...) {
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("suites: --focus/--skip %q: %w", re, err)
		}
	}
	if o.OCIRuntime != "" {
		if _, err := ociruntime.Lookup(o.OCIRuntime); err != nil {
			return fmt.Errorf("suites: --oci-runtime: %w", err)
		}
	}
	if o.Address != "" && (o.Matrix || o.Toolchain != "") {
		return errors.New("suites: --address runs against that daemon; --matrix and --containerd choose a private one")
	}
	return nil
}

// Result is one suite's row in the summary.
type Result struct {
	Suite     string        `json:"suite"`
	Toolchain string        `json:"toolchain"`
	Specs     int           `json:"specs"`
	Passed    int           `json:"passed"`
	Failed    int           `json:"failed"`
	Skipped   int           `json:"skipped"`
	Duration  time.Duration `json:"duration_ns"`
	OK        bool          `json:"ok"`
	Error     string        `json:"error,omitempty"`
	JUnit     string        `json:"junit"`
	JSON      string        `json:"json"`
	Log       string        `json:"log"`
	Failures  []string      `json:"failures,omitempty"`
	// Deviations are the documented deviations the suite's specs met.
	Deviations []string `json:"deviations,omitempty"`
}

// Summary is summary.json.
type Summary struct {
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	OK        bool          `json:"ok"`
	Suites    []Result      `json:"suites"`
	Toolchain []string      `json:"toolchains"`
}

// Run stages the toolchain(s), starts one private containerd per toolchain, builds
// and runs the suites, prints the summary table to stdout and progress to stderr,
// and returns an error when any suite failed.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	start := time.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "[%s] "+format+"\n", append([]any{time.Since(start).Round(time.Second)}, args...)...)
	}
	if err := o.Check(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("suites: containerd needs root; run as root")
	}
	if o.Jobs < 1 {
		o.Jobs = 1
	}
	root, err := gobuild.ModuleRoot(ctx)
	if err != nil {
		return fmt.Errorf("suites: %w (run from the orchd source tree)", err)
	}
	names, err := discoverSuites(root, o.Suites)
	if err != nil {
		return err
	}
	if o.ReportDir, err = filepath.Abs(o.ReportDir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.ReportDir, 0o755); err != nil {
		return fmt.Errorf("suites: %w", err)
	}
	work, err := os.MkdirTemp("", "orchd-harness-suites-")
	if err != nil {
		return fmt.Errorf("suites: %w", err)
	}
	defer os.RemoveAll(work)

	// The OCI runtime reaches orchd (and the suites' reports) as the binary
	// the runc shim runs: a wrapper adding runsc's flags where it needs them.
	var ociEnv []string
	if o.OCIRuntime != "" {
		rt, err := ociruntime.Lookup(o.OCIRuntime)
		if err != nil {
			return fmt.Errorf("suites: %w", err)
		}
		bin, err := rt.Binary(filepath.Join(work, "oci"))
		if err != nil {
			return fmt.Errorf("suites: %w", err)
		}
		progress("OCI runtime: %s (%s)", rt.Name, bin)
		ociEnv = []string{settings.EnvOCIRuntime + "=" + bin}
	}

	var tcs []*toolchain.Toolchain
	switch {
	case o.Address != "":
		progress("containerd: using the daemon at %s (no private daemon, no toolchain staging)", o.Address)
	case o.Matrix:
		progress("toolchains: the matrix (system 1.6 and the pinned 2.x)")
		// Both or nothing: a matrix never narrows to what happens to be staged.
		if tcs, err = toolchain.Matrix(ctx, toolchain.Options{}); err != nil {
			return fmt.Errorf("suites: %w", err)
		}
	default:
		progress("toolchain: %s", toolchain.Rule(o.Toolchain))
		resolve := toolchain.Resolve
		if o.Toolchain != "" {
			resolve = toolchain.Staged // named: must be staged, never built here
		}
		tc, err := resolve(ctx, toolchain.Options{Containerd: o.Toolchain, Progress: stderr})
		if err != nil {
			return fmt.Errorf("suites: %w (install: %s)", err, toolchain.AptInstall)
		}
		tcs = []*toolchain.Toolchain{tc}
	}

	progress("build: orchd and orchd-supervise (CGO_ENABLED=0)")
	orchd, err := gobuild.Orchd(ctx, root, work)
	if err != nil {
		return fmt.Errorf("suites: %w", err)
	}
	progress("build: fixture images")
	imagesDir := filepath.Join(work, "images")
	set, err := images.Build(ctx, imagesDir)
	if err != nil {
		return fmt.Errorf("suites: %w", err)
	}
	if b, err := json.MarshalIndent(set, "", "  "); err == nil {
		if err := os.WriteFile(filepath.Join(imagesDir, imagesSetFile), b, 0o644); err != nil {
			return fmt.Errorf("suites: %w", err)
		}
	}
	progress("build: compiling %d suites (%s)", len(names), strings.Join(names, ", "))
	bins, err := gobuild.Suites(ctx, root, filepath.Join(work, "bin"), gobuild.SuiteOptions{}, names...)
	if err != nil {
		return fmt.Errorf("suites: %w", err)
	}

	sum := Summary{Started: start}
	if o.Address != "" {
		set := settings.Settings{Socket: o.Address, Orchd: orchd, Images: imagesDir, Toolchain: "external", ReportDir: o.ReportDir}
		sum.Toolchain = append(sum.Toolchain, "external")
		sum.Suites = runSuiteBinaries(ctx, o, root, names, bins, append(set.Environ(), ociEnv...), "external", "", progress)
	}
	for _, tc := range tcs {
		sum.Toolchain = append(sum.Toolchain, tc.Name)
		progress("daemon: starting a private containerd %s (%s)", tc.Containerd.Version, tc.Name)
		d, err := daemon.Start(ctx, tc, daemon.Options{Debug: true})
		if err != nil {
			return fmt.Errorf("suites: %w", err)
		}
		progress("daemon: %s (pid %d)", d.Address(), d.Pid())
		set := settings.FromDaemon(d)
		set.DebugSocket = d.Address() + ".debug"
		set.Orchd, set.Images, set.Toolchain = orchd, imagesDir, tc.Name
		set.ReportDir = o.ReportDir
		env := append(set.Environ(), ociEnv...)
		suffix := ""
		if o.Matrix {
			suffix = "-" + tc.Name
		}
		results := runSuiteBinaries(ctx, o, root, names, bins, env, tc.Name, suffix, progress)
		sum.Suites = append(sum.Suites, results...)
		if err := d.Stop(context.WithoutCancel(ctx)); err != nil {
			progress("daemon: stop: %v", err)
		}
	}
	sum.Duration = time.Since(start)
	if err := WriteSummary(o.ReportDir, &sum); err != nil {
		progress("reports: %v", err)
	}
	PrintSummary(stdout, sum, o.Matrix)
	// The matrix (suite x toolchain x OCI runtime x host/vm) covers every
	// stack's files in the dir, inception's included when written there.
	if m, err := matrix.Read(o.ReportDir); err != nil && m == nil {
		progress("reports: matrix: %v", err)
	} else {
		if err != nil {
			progress("reports: matrix: %v", err)
		}
		if err := m.Write(o.ReportDir); err != nil {
			progress("reports: matrix: %v", err)
		}
		fmt.Fprintln(stdout)
		_ = m.WriteMarkdown(stdout)
	}
	fmt.Fprintf(stdout, "reports: %s\n", o.ReportDir)
	if !sum.OK {
		return errors.New("suites failed")
	}
	return nil
}

// WriteSummary sets sum.OK (at least one suite, and every suite OK) and
// writes the merged junit.xml and summary.json into dir.
func WriteSummary(dir string, sum *Summary) error {
	var junits []string
	for _, r := range sum.Suites {
		junits = append(junits, r.JUnit)
	}
	merr := MergeJUnit(junits, filepath.Join(dir, "junit.xml"))
	sum.OK = len(sum.Suites) > 0
	for _, r := range sum.Suites {
		sum.OK = sum.OK && r.OK
	}
	b, err := json.MarshalIndent(sum, "", "  ")
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "summary.json"), append(b, '\n'), 0o644)
	}
	if merr != nil {
		merr = fmt.Errorf("merged junit.xml: %w", merr)
	}
	return errors.Join(merr, err)
}

// discoverSuites lists suite packages under suites/ (dirs with _test.go
// files, the framework excluded), filtered by want.
func discoverSuites(root string, want []string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(root, "suites"))
	if err != nil {
		return nil, fmt.Errorf("suites: %w", err)
	}
	var all []string
	for _, e := range ents {
		if !e.IsDir() || e.Name() == "framework" {
			continue
		}
		tests, _ := filepath.Glob(filepath.Join(root, "suites", e.Name(), "*_test.go"))
		if len(tests) > 0 {
			all = append(all, e.Name())
		}
	}
	if len(want) == 0 {
		return slices.DeleteFunc(all, func(n string) bool { return slices.Contains(ExcludedByDefault, n) }), nil
	}
	for _, w := range want {
		if !slices.Contains(all, w) {
			return nil, fmt.Errorf("suites: unknown suite %q (have: %s)", w, strings.Join(all, ", "))
		}
	}
	return want, nil
}

func runSuiteBinaries(ctx context.Context, o Options, root string, names []string, bins map[string]string, env []string, tc, suffix string, progress func(string, ...any)) []Result {
	results := make([]Result, len(names))
	Schedule(names, o.Jobs, func(i int) {
		n := names[i]
		progress("suite %s: running (%s)", n, tc)
		r := runSuiteBinary(ctx, o, root, n, bins[n], env, tc, suffix, func(line string) { progress("suite %s: %s", n, line) })
		results[i] = r
		status := "PASS"
		if !r.OK {
			status = "FAIL"
		}
		progress("suite %s: %s  %d specs, %d passed, %d failed, %d skipped in %s", n, status, r.Specs, r.Passed, r.Failed, r.Skipped, r.Duration.Round(time.Second))
		for _, f := range r.Failures {
			progress("suite %s:   failed: %s", n, f)
		}
		if r.Error != "" {
			progress("suite %s:   %s (log: %s)", n, r.Error, r.Log)
		}
	})
	return results
}

// Schedule calls run(i) for every suite in names, up to jobs at once, in
// the order given; the suites in Alone run afterwards, one at a time with
// nothing beside them. It returns when every run has returned.
func Schedule(names []string, jobs int, run func(i int)) {
	jobs = max(jobs, 1)
	var wg sync.WaitGroup
	start := func(i int, sem chan struct{}) {
		// Acquire before spawning, so suites start in the order given.
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			run(i)
		}()
	}
	sem := make(chan struct{}, jobs)
	for i, n := range names {
		if !slices.Contains(Alone, n) {
			start(i, sem)
		}
	}
	wg.Wait()
	alone := make(chan struct{}, 1)
	for i, n := range names {
		if slices.Contains(Alone, n) {
			start(i, alone)
			wg.Wait()
		}
	}
}

func runSuiteBinary(ctx context.Context, o Options, root, name, bin string, env []string, tc, suffix string, spec func(string)) Result {
	var args []string
	if o.LabelFilter != "" {
		args = append(args, "-ginkgo.label-filter", o.LabelFilter)
	}
	for _, f := range o.Focus {
		args = append(args, "-ginkgo.focus", f)
	}
	for _, f := range o.Skip {
		args = append(args, "-ginkgo.skip", f)
	}
	if o.FailFast {
		args = append(args, "-ginkgo.fail-fast")
	}
	return RunBinary(ctx, Binary{
		Name: name, Path: bin, Toolchain: tc, ReportDir: o.ReportDir, Suffix: suffix,
		// Like go test: the package dir is the working dir.
		Dir:  filepath.Join(root, "suites", name),
		Env:  env,
		Args: append(args, o.GinkgoArgs...), Timeout: o.Timeout, Spec: spec,
	})
}

// Binary is one run of a compiled suite.
type Binary struct {
	Name      string // suite name ("fanout", "inception/inner")
	Path      string // the compiled suite (go test -c)
	Dir       string // working dir
	Toolchain string // recorded in the Result
	// ReportDir receives <name><suffix>.junit.xml, .json, .log and .specs
	// ("/" in a name becomes "-").
	ReportDir string
	Suffix    string
	Env       []string // added to this process's environment
	Args      []string // more flags for the suite binary (Ginkgo's)
	Timeout   time.Duration
	// Spec receives each spec's result line as the spec finishes.
	Spec func(line string)
}

// BaseName is the report file name stem of a suite: "inception/inner" ->
// "inception-inner".
func BaseName(name string) string { return strings.ReplaceAll(name, "/", "-") }

// RunBinary runs one compiled suite, writing its JUnit, JSON and log files to
// b.ReportDir, and reads its verdict back from the JSON report.
func RunBinary(ctx context.Context, b Binary) Result {
	base := filepath.Join(b.ReportDir, BaseName(b.Name)+b.Suffix)
	r := Result{
		Suite:     b.Name,
		Toolchain: b.Toolchain,
		JUnit:     base + ".junit.xml",
		JSON:      base + ".json",
		Log:       base + ".log",
	}
	args := []string{
		"-test.v", "-test.timeout", b.Timeout.String(),
		"-ginkgo.junit-report", r.JUnit,
		"-ginkgo.json-report", r.JSON,
		"-ginkgo.no-color",
	}
	args = append(args, b.Args...)
	_ = os.Remove(r.JSON)
	logf, err := os.Create(r.Log)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, b.Path, args...)
	cmd.Dir = b.Dir
	// Each spec's result is streamed as it finishes, through a file the
	// suite's framework appends one line to per spec.
	stream := base + ".specs"
	_ = os.Remove(stream)
	cmd.Env = append(append(os.Environ(), b.Env...), settings.EnvSpecStream+"="+stream)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = 10 * time.Second
	spec := b.Spec
	if spec == nil {
		spec = func(string) {}
	}
	start := time.Now()
	stop := make(chan struct{})
	tailed := make(chan struct{})
	go func() {
		defer close(tailed)
		tailLines(stream, stop, spec)
	}()
	runErr := cmd.Run()
	close(stop)
	<-tailed
	r.Duration = time.Since(start)
	Verdict(&r, runErr)
	return r
}

// Verdict fills r from its JSON report: counts, failures and OK. runErr is
// the suite binary's exit (nil when it is not known, e.g. reading reports
// written elsewhere). A missing report, or a run where no spec passed, fails.
func Verdict(r *Result, runErr error) {
	r.Specs, r.Passed, r.Failed, r.Skipped, r.Failures = 0, 0, 0, 0, nil
	if err := countSpecs(r); err != nil {
		r.Error = err.Error()
	}
	if r.Duration == 0 { // reports written elsewhere (inside the VM): their own run time
		r.Duration = reportRunTime(r.JSON)
	}
	if r.Error == "" && r.Passed == 0 {
		r.Error = "no spec passed: a run that proves nothing is a failure"
	}
	r.OK = runErr == nil && r.Error == "" && r.Failed == 0
	if runErr != nil && r.Error == "" && r.Failed == 0 {
		r.Error = fmt.Sprintf("suite binary: %v", runErr)
	}
}

// reportRunTime is the run time a Ginkgo JSON report records (0 when unreadable).
func reportRunTime(path string) time.Duration {
	var reports []struct{ RunTime time.Duration }
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &reports) != nil {
		return 0
	}
	var d time.Duration
	for _, r := range reports {
		d += r.RunTime
	}
	return d
}

// countSpecs reads the Ginkgo JSON report.
func countSpecs(r *Result) error {
	c, err := matrix.CountReport(r.JSON)
	r.Specs, r.Passed, r.Failed, r.Skipped, r.Failures, r.Deviations = c.Specs, c.Passed, c.Failed, c.Skipped, c.Failures, c.Deviations
	return err
}

// PrintSummary prints the per-suite table (with a toolchain column for a matrix).
func PrintSummary(w io.Writer, sum Summary, withToolchain bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "SUITE\tSPECS\tPASSED\tFAILED\tSKIPPED\tTIME\tRESULT"
	if withToolchain {
		head = "SUITE\tTOOLCHAIN\tSPECS\tPASSED\tFAILED\tSKIPPED\tTIME\tRESULT"
	}
	fmt.Fprintln(tw, head)
	var specs, passed, failed, skipped int
	for _, r := range sum.Suites {
		res := "PASS"
		if !r.OK {
			res = "FAIL"
		}
		if withToolchain {
			fmt.Fprintf(tw, "%s\t%s\t", r.Suite, r.Toolchain)
		} else {
			fmt.Fprintf(tw, "%s\t", r.Suite)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\n", r.Specs, r.Passed, r.Failed, r.Skipped, r.Duration.Round(time.Second), res)
		specs, passed, failed, skipped = specs+r.Specs, passed+r.Passed, failed+r.Failed, skipped+r.Skipped
	}
	res := "PASS"
	if !sum.OK {
		res = "FAIL"
	}
	if withToolchain {
		fmt.Fprint(tw, "TOTAL\t\t")
	} else {
		fmt.Fprint(tw, "TOTAL\t")
	}
	fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%s\t%s\n", specs, passed, failed, skipped, sum.Duration.Round(time.Second), res)
	tw.Flush()
}

// MergeJUnit writes one JUnit file holding every suite's test suites, beside
// the per-suite files (which stay).
func MergeJUnit(sources []string, dst string) error {
	var merged reporters.JUnitTestSuites
	var errs []error
	for _, src := range sources {
		b, err := os.ReadFile(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var one reporters.JUnitTestSuites
		if err := xml.Unmarshal(b, &one); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err))
			continue
		}
		merged.Tests += one.Tests
		merged.Disabled += one.Disabled
		merged.Errors += one.Errors
		merged.Failures += one.Failures
		merged.Time += one.Time
		merged.TestSuites = append(merged.TestSuites, one.TestSuites...)
	}
	b, err := xml.MarshalIndent(merged, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, append([]byte(xml.Header), append(b, '\n')...), 0o644); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// tailLines calls line for each complete line appended to path until stop is
// closed, then for what is left.
func tailLines(path string, stop <-chan struct{}, line func(string)) {
	var off int64
	var partial string
	read := func() {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		b, err := io.ReadAll(io.NewSectionReader(f, off, 1<<30))
		if err != nil || len(b) == 0 {
			return
		}
		off += int64(len(b))
		text := partial + string(b)
		lines := strings.Split(text, "\n")
		partial = lines[len(lines)-1]
		for _, l := range lines[:len(lines)-1] {
			line(l)
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			read()
			if partial != "" {
				line(partial)
			}
			return
		case <-tick.C:
			read()
		}
	}
}
