package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/toolchain"
)

// Suites that need more than a containerd socket run through their own
// command (the inception suite boots a VM: `orchd-harness inception`).
var suitesExcludedByDefault = []string{"inception"}

// Suites that measure the daemon as a whole (fds, threads, goroutines) run
// alone, after the others, whatever --jobs says.
var suitesAlone = []string{"leak"}

// Environment the suite framework reads (suites/framework/env.go).
const (
	envSocket      = "ORCHD_CONTAINERD_SOCKET"
	envRoot        = "ORCHD_CONTAINERD_ROOT"
	envState       = "ORCHD_CONTAINERD_STATE"
	envPid         = "ORCHD_CONTAINERD_PID"
	envLog         = "ORCHD_CONTAINERD_LOG"
	envDebugSocket = "ORCHD_CONTAINERD_DEBUG_SOCKET"
	envOrchd       = "ORCHD_BINARY"
	envImages      = "ORCHD_IMAGES_DIR"
	envToolchain   = "ORCHD_SUITE_TOOLCHAIN"
	imagesSetFile  = "set.json"
)

type suitesOptions struct {
	reportDir   string
	suites      []string
	labelFilter string
	matrix      bool
	toolchain   string
	jobs        int
	timeout     time.Duration
}

// suiteResult is one suite's row in the summary.
type suiteResult struct {
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
}

// summary is summary.json.
type summary struct {
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	OK        bool          `json:"ok"`
	Suites    []suiteResult `json:"suites"`
	Toolchain []string      `json:"toolchains"`
}

func newSuitesCmd() *cobra.Command {
	var o suitesOptions
	cmd := &cobra.Command{
		Use:   "suites",
		Short: "Run the conformance suites against one private containerd; per-suite table, JUnit + JSON reports",
		Long: `Stages the containerd toolchain, starts ONE private daemon, builds orchd and the
fixture images once, compiles each suite under suites/ with go test -c and runs it
against the daemon. Writes <suite>.junit.xml, <suite>.json and <suite>.log per suite
plus summary.json into --report-dir, and exits non-zero when any spec failed.
With --matrix the whole run repeats for every staged toolchain (report names get
the toolchain as a suffix).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSuites(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.reportDir, "report-dir", "reports", "where reports and logs are written")
	f.StringSliceVar(&o.suites, "suites", nil, "suites to run (default: every suite under suites/ except "+strings.Join(suitesExcludedByDefault, ",")+")")
	f.StringVar(&o.labelFilter, "label-filter", "", "Ginkgo label filter, e.g. '!slow'")
	f.BoolVar(&o.matrix, "matrix", false, "run against every staged toolchain")
	f.StringVar(&o.toolchain, "toolchain", "", `toolchain for the daemon: "system" or a 2.x version (default: the pinned 2.x when staged, else system)`)
	// One at a time by default: the leak inspector's mount check covers the
	// daemon's whole root, so a suite running alongside can show its
	// transient unpack mounts in another suite's namespace check.
	f.IntVar(&o.jobs, "jobs", 1, "suites run at once against the shared daemon (>1 can make daemon-wide mount checks see another suite's transient mounts; "+strings.Join(suitesAlone, ", ")+" always runs alone, last)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Minute, "per-suite timeout")
	return cmd
}

func runSuites(ctx context.Context, o suitesOptions, stdout, stderr io.Writer) error {
	start := time.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(stderr, "[%s] "+format+"\n", append([]any{time.Since(start).Round(time.Second)}, args...)...)
	}
	if os.Geteuid() != 0 {
		return errors.New("suites: containerd needs root; run as root")
	}
	if o.jobs < 1 {
		o.jobs = 1
	}
	root, err := images.FindModuleRoot(ctx)
	if err != nil {
		return fmt.Errorf("suites: %w (run from the orchd source tree)", err)
	}
	names, err := discoverSuites(root, o.suites)
	if err != nil {
		return err
	}
	if o.reportDir, err = filepath.Abs(o.reportDir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.reportDir, 0o755); err != nil {
		return fmt.Errorf("suites: %w", err)
	}
	work, err := os.MkdirTemp("", "orchd-harness-suites-")
	if err != nil {
		return fmt.Errorf("suites: %w", err)
	}
	defer os.RemoveAll(work)

	var tcs []*toolchain.Toolchain
	if o.matrix {
		progress("toolchains: listing staged toolchains")
		if tcs, err = toolchain.Available(ctx, toolchain.Options{}); err != nil {
			return fmt.Errorf("suites: %w (install: %s; build the pinned 2.x: go run ./cmd/orchd-harness stage --containerd v2.2.1)", err, toolchain.AptInstall)
		}
	} else {
		progress("toolchain: resolving %q", o.toolchain)
		tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: o.toolchain, Progress: stderr})
		if err != nil {
			return fmt.Errorf("suites: %w (install: %s)", err, toolchain.AptInstall)
		}
		tcs = []*toolchain.Toolchain{tc}
	}

	progress("build: orchd and orchd-supervise (CGO_ENABLED=0)")
	orchd := filepath.Join(work, "orchd")
	// orchd-supervise beside orchd is what the orchdi platform runs supervisors as.
	if err := goBuild(ctx, root, []string{"CGO_ENABLED=0"}, "build", "-o", work+string(filepath.Separator), "./cmd/orchd", "./cmd/orchd-supervise"); err != nil {
		return err
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
	// One go invocation compiles every suite, sharing the build work;
	// each binary is <dir>/<suite>.test.
	binDir := filepath.Join(work, "bin") + string(filepath.Separator)
	buildArgs := []string{"test", "-c", "-o", binDir}
	for _, n := range names {
		buildArgs = append(buildArgs, "./suites/"+n)
	}
	if err := goBuild(ctx, root, nil, buildArgs...); err != nil {
		return err
	}
	bins := map[string]string{}
	for _, n := range names {
		bins[n] = filepath.Join(binDir, n+".test")
		if _, err := os.Stat(bins[n]); err != nil {
			return fmt.Errorf("suites: compiled suite %s: %w", n, err)
		}
	}

	sum := summary{Started: start}
	for _, tc := range tcs {
		sum.Toolchain = append(sum.Toolchain, tc.Name)
		progress("daemon: starting a private containerd %s (%s)", tc.Containerd.Version, tc.Name)
		d, err := daemon.Start(ctx, tc, daemon.Options{Debug: true})
		if err != nil {
			return fmt.Errorf("suites: %w", err)
		}
		progress("daemon: %s (pid %d)", d.Address(), d.Pid())
		env := []string{
			envSocket + "=" + d.Address(),
			envRoot + "=" + d.Root(),
			envState + "=" + d.State(),
			envPid + "=" + strconv.Itoa(d.Pid()),
			envLog + "=" + d.LogPath(),
			envDebugSocket + "=" + d.Address() + ".debug",
			envOrchd + "=" + orchd,
			envImages + "=" + imagesDir,
			envToolchain + "=" + tc.Name,
		}
		suffix := ""
		if o.matrix {
			suffix = "-" + tc.Name
		}
		results := runSuiteBinaries(ctx, o, root, names, bins, env, tc.Name, suffix, progress)
		sum.Suites = append(sum.Suites, results...)
		if err := d.Stop(context.WithoutCancel(ctx)); err != nil {
			progress("daemon: stop: %v", err)
		}
	}
	sum.Duration = time.Since(start)
	sum.OK = len(sum.Suites) > 0
	for _, r := range sum.Suites {
		sum.OK = sum.OK && r.OK
	}
	b, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.reportDir, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("suites: %w", err)
	}
	printSuiteTable(stdout, sum, o.matrix)
	fmt.Fprintf(stdout, "reports: %s\n", o.reportDir)
	if !sum.OK {
		return errors.New("suites failed")
	}
	return nil
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
		return slices.DeleteFunc(all, func(n string) bool { return slices.Contains(suitesExcludedByDefault, n) }), nil
	}
	for _, w := range want {
		if !slices.Contains(all, w) {
			return nil, fmt.Errorf("suites: unknown suite %q (have: %s)", w, strings.Join(all, ", "))
		}
	}
	return want, nil
}

func goBuild(ctx context.Context, root string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func runSuiteBinaries(ctx context.Context, o suitesOptions, root string, names []string, bins map[string]string, env []string, tc, suffix string, progress func(string, ...any)) []suiteResult {
	results := make([]suiteResult, len(names))
	run := func(i int, wg *sync.WaitGroup, sem chan struct{}) {
		n := names[i]
		// Acquire before spawning, so suites start in the order given.
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			progress("suite %s: running (%s)", n, tc)
			r := runSuiteBinary(ctx, o, root, n, bins[n], env, tc, suffix)
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
		}()
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, o.jobs)
	for i, n := range names {
		if !slices.Contains(suitesAlone, n) {
			run(i, &wg, sem)
		}
	}
	wg.Wait()
	alone := make(chan struct{}, 1)
	for i, n := range names {
		if slices.Contains(suitesAlone, n) {
			run(i, &wg, alone)
			wg.Wait()
		}
	}
	return results
}

func runSuiteBinary(ctx context.Context, o suitesOptions, root, name, bin string, env []string, tc, suffix string) suiteResult {
	r := suiteResult{
		Suite:     name,
		Toolchain: tc,
		JUnit:     filepath.Join(o.reportDir, name+suffix+".junit.xml"),
		JSON:      filepath.Join(o.reportDir, name+suffix+".json"),
		Log:       filepath.Join(o.reportDir, name+suffix+".log"),
	}
	args := []string{
		"-test.v", "-test.timeout", o.timeout.String(),
		"-ginkgo.junit-report", r.JUnit,
		"-ginkgo.json-report", r.JSON,
		"-ginkgo.no-color",
	}
	if o.labelFilter != "" {
		args = append(args, "-ginkgo.label-filter", o.labelFilter)
	}
	_ = os.Remove(r.JSON)
	logf, err := os.Create(r.Log)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	// Like go test: the package dir is the working dir.
	cmd.Dir = filepath.Join(root, "suites", name)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	runErr := cmd.Run()
	r.Duration = time.Since(start)
	if err := countSpecs(&r); err != nil {
		r.Error = err.Error()
	}
	r.OK = runErr == nil && r.Error == "" && r.Failed == 0
	if runErr != nil && r.Error == "" && r.Failed == 0 {
		r.Error = fmt.Sprintf("suite binary: %v", runErr)
	}
	return r
}

// countSpecs reads the Ginkgo JSON report.
func countSpecs(r *suiteResult) error {
	b, err := os.ReadFile(r.JSON)
	if err != nil {
		return fmt.Errorf("no Ginkgo report: %w", err)
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return fmt.Errorf("decode %s: %w", r.JSON, err)
	}
	for _, rep := range reports {
		for _, s := range rep.SpecReports {
			if s.LeafNodeType != types.NodeTypeIt {
				if s.State.Is(types.SpecStateFailureStates) {
					r.Failed++
					r.Failures = append(r.Failures, fmt.Sprintf("[%s] %s", s.LeafNodeType, firstLine(s.Failure.Message)))
				}
				continue
			}
			r.Specs++
			switch {
			case s.State == types.SpecStatePassed:
				r.Passed++
			case s.State.Is(types.SpecStateFailureStates):
				r.Failed++
				r.Failures = append(r.Failures, s.FullText())
			default:
				r.Skipped++
			}
		}
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func printSuiteTable(w io.Writer, sum summary, withToolchain bool) {
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
