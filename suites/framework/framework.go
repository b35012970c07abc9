// Package framework is the shared bootstrap of the conformance suites: it
// builds orchd once, connects to a containerd (or starts a private one per
// Ginkgo process with a staged toolchain), builds the fixture images once, and
// gives every spec its own namespace, state dir and project dir with helpers to
// drive the real orchd binary and to prove that nothing leaked.
//
// A suite declares
//
//	var fw = framework.New("fanout", framework.Options{})
//	func TestFanout(t *testing.T) { framework.RunSuite(t, "fanout") }
//
// and each spec calls fw.NewSpec() in a BeforeEach.
//
// Toolchains: a private daemon runs the toolchain named by ORCHD_SUITE_TOOLCHAIN
// ("system" = Debian's containerd 1.6, "v2.2.1" = the pinned 2.x; default: the
// pinned 2.x when staged, else system). ORCHD_TOOLCHAIN_MATRIX=1 makes RunSuite
// run the compiled suite once per toolchain that toolchain.Available reports,
// each in its own process with ORCHD_SUITE_TOOLCHAIN set; `orchd-harness suites
// --matrix` does the same with one shared daemon per toolchain.
package framework

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // the Ginkgo DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/ociruntime"
	"github.com/orchd/orchd/harness/settings"
	"github.com/orchd/orchd/harness/toolchain"
)

// Options tune a suite's bootstrap.
type Options struct {
	// Debug starts a private daemon with its debug socket, so goroutine
	// counts can be read from /debug/pprof.
	Debug bool
}

// Daemon describes the containerd the suite drives.
type Daemon struct {
	Address     string `json:"address"`
	Root        string `json:"root"`
	State       string `json:"state"`
	Pid         int    `json:"pid"`
	LogPath     string `json:"log_path"`
	DebugSocket string `json:"debug_socket"`
	Toolchain   string `json:"toolchain"`
	// Private is true when this process started the daemon.
	Private bool `json:"private"`
}

// Framework is one suite's shared state. Fields are set by the suite nodes
// New registers and are read-only inside specs.
type Framework struct {
	Name string
	opts Options

	// Orchd is the orchd binary every spec runs.
	Orchd string
	// Daemon is the containerd this Ginkgo process drives.
	Daemon Daemon
	// Images are the fixture layouts by name (probe, probe-user, probe-layers).
	Images map[string]Image
	// Env is the stack this process runs on; every report names it.
	Env Environment

	shared  shared
	private *daemon.Daemon
}

// shared is what process 1 prepares for every process.
type shared struct {
	Orchd     string `json:"orchd"`
	Work      string `json:"work"` // removed by process 1 at the end ("" = nothing to remove)
	ImagesDir string `json:"images_dir"`
	Toolchain string `json:"toolchain"`
	// OCIBinary is what orchd passes as the runc shim's BinaryName ("" = runc).
	OCIBinary string `json:"oci_binary"`
}

// New registers the suite-level setup and teardown and returns the
// Framework the specs use. Call it once per suite, at package level.
func New(name string, opts Options) *Framework {
	f := &Framework{Name: name, opts: opts}
	SynchronizedBeforeSuite(f.setupOnce, f.setupEach, NodeDeadline(20*time.Minute))
	SynchronizedAfterSuite(f.teardownEach, f.teardownOnce, NodeDeadline(2*time.Minute))
	ReportAfterEach(streamSpec)
	ReportAfterSuite(name+" reports", f.afterSuite)
	return f
}

// streamSpec appends the finished spec's result to the runner's stream file
// (settings.EnvSpecStream), when the runner asked for one.
func streamSpec(r SpecReport) {
	set, _ := settings.FromEnv() // a bad setting already failed the suite's setup
	path := set.SpecStream
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return // the reports still carry the result
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %.1fs %s\n", strings.ToUpper(r.State.String()), r.RunTime.Seconds(), r.FullText())
}

// setupOnce runs on process 1: orchd binary, toolchain staging, images.
func (f *Framework) setupOnce(ctx SpecContext) []byte {
	requireRoot()
	s := shared{}
	work, err := os.MkdirTemp("", "orchd-suite-")
	Expect(err).NotTo(HaveOccurred())
	s.Work = work
	// A failure below never returns the data, so teardownOnce would not
	// know the dir: remove it here.
	done := false
	defer func() {
		if !done {
			_ = os.RemoveAll(work)
		}
	}()

	set := readSettings()
	s.Orchd = set.Orchd
	if s.Orchd == "" {
		s.Orchd = buildOrchd(ctx, work)
	}
	if !set.External() {
		tc := resolveToolchain(ctx, set.Toolchain)
		s.Toolchain = tc.Name
	}
	s.OCIBinary = ociBinary(set.OCIRuntime, filepath.Join(work, "oci"))
	s.ImagesDir = set.Images
	if s.ImagesDir == "" {
		s.ImagesDir = filepath.Join(work, "images")
		buildImages(ctx, s.ImagesDir)
	}
	b, err := json.Marshal(s)
	Expect(err).NotTo(HaveOccurred())
	done = true
	return b
}

// setupEach runs on every process: connect to or start a daemon, load images.
func (f *Framework) setupEach(ctx SpecContext, data []byte) {
	Expect(json.Unmarshal(data, &f.shared)).To(Succeed())
	f.Orchd = f.shared.Orchd
	f.Images = loadImages(ctx, f.shared.ImagesDir)
	SetDefaultEventuallyTimeout(Scaled(90 * time.Second))
	// Polls (an `orchd survey` each, mostly) are stretched too: where every
	// exec is slow (TCG), a fixed 200 ms would keep one busy all the time,
	// taking the CPU from the services the poll waits for.
	SetDefaultEventuallyPollingInterval(Scaled(200 * time.Millisecond))
	SetDefaultConsistentlyDuration(3 * time.Second)
	SetDefaultConsistentlyPollingInterval(Scaled(200 * time.Millisecond))

	set := readSettings()
	if set.External() {
		f.Daemon = externalDaemon(set)
		fmt.Fprintf(GinkgoWriter, "suite %s: using containerd at %s\n", f.Name, set.Socket)
		f.recordEnv(ctx)
		return
	}
	tc := resolveToolchain(ctx, set.Toolchain)
	d, err := daemon.Start(ctx, tc, daemon.Options{Debug: f.opts.Debug})
	Expect(err).NotTo(HaveOccurred(), "start a private containerd (%s)", tc.Name)
	f.private = d
	f.Daemon = Daemon{
		Address:   d.Address(),
		Root:      d.Root(),
		State:     d.State(),
		Pid:       d.Pid(),
		LogPath:   d.LogPath(),
		Toolchain: tc.Name,
		Private:   true,
	}
	if f.opts.Debug {
		f.Daemon.DebugSocket = d.Address() + ".debug"
	}
	fmt.Fprintf(GinkgoWriter, "suite %s: private containerd %s (%s) at %s\n", f.Name, tc.Containerd.Version, tc.Name, d.Address())
	f.recordEnv(ctx)
}

// recordEnv names the stack in this process's report.
func (f *Framework) recordEnv(ctx context.Context) {
	f.Env = environment(ctx, f.Daemon.Toolchain, f.daemonVersion(ctx), f.shared.OCIBinary)
	b, err := json.Marshal(f.Env)
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("environment", string(b))
}

func (f *Framework) teardownEach(ctx SpecContext) {
	if f.private != nil {
		Expect(f.private.Stop(ctx)).To(Succeed(), "stop the private containerd")
		f.private = nil
	}
}

func (f *Framework) teardownOnce(ctx SpecContext) {
	if f.shared.Work != "" {
		Expect(os.RemoveAll(f.shared.Work)).To(Succeed())
	}
}

// DaemonLogTail returns the last n lines of the daemon's log ("" if unknown).
func (f *Framework) DaemonLogTail(n int) string {
	if f.private != nil {
		return f.private.LogTail(n)
	}
	if f.Daemon.LogPath == "" {
		return ""
	}
	return tailFile(f.Daemon.LogPath, n)
}

func externalDaemon(set settings.Settings) Daemon {
	d := Daemon{
		Address:     set.Socket,
		Root:        cmp.Or(set.Root, defaultRoot),
		State:       cmp.Or(set.State, defaultState),
		Pid:         set.Pid,
		LogPath:     set.Log,
		DebugSocket: set.DebugSocket,
		Toolchain:   set.Toolchain,
	}
	return d
}

// requireRoot fails (never skips) when containerd cannot be run.
func requireRoot() {
	if os.Geteuid() != 0 {
		Fail("the containerd suites need root (containerd, runc, mounts, cgroups): run them as root, e.g. sudo -E go test ./suites/...")
	}
}

// resolveToolchain stages the selected toolchain; a missing one is a failure
// that names the install command.
func resolveToolchain(ctx context.Context, want string) *toolchain.Toolchain {
	resolve := toolchain.Resolve
	if want != "" {
		// Asked for by name: it must be staged; it is never built here.
		resolve = toolchain.Staged
	}
	tc, err := resolve(ctx, toolchain.Options{Containerd: want, Progress: GinkgoWriter})
	if err != nil {
		Fail(fmt.Sprintf("no containerd toolchain %q: %v\ninstall: %s  (containerd 1.6 + runc)\nor build the pinned 2.x: go run ./cmd/orchd-harness stage --containerd v2.2.1\nor point %s at an existing daemon socket",
			want, err, toolchain.AptInstall, EnvSocket))
	}
	return tc
}

// ociBinary resolves ORCHD_OCI_RUNTIME to the binary orchd gives the runc
// shim, placing a wrapper in dir for a runtime that needs flags (runsc); a
// missing runtime fails with its install command.
func ociBinary(name, dir string) string {
	if name == "" {
		return ""
	}
	rt, err := ociruntime.Lookup(name)
	if err != nil {
		Fail(fmt.Sprintf("%s=%s: %v", EnvOCIRuntime, name, err))
	}
	bin, err := rt.Binary(dir)
	if err != nil {
		Fail(err.Error())
	}
	return bin
}

// buildOrchd compiles orchd statically (supervisors and containerd-run leaves
// re-exec it) into dir.
func buildOrchd(ctx context.Context, dir string) string {
	root, err := gobuild.ModuleRoot(ctx)
	if err != nil {
		Fail(fmt.Sprintf("building orchd needs the Go toolchain on PATH and the orchd source tree (or set %s to a prebuilt CGO_ENABLED=0 orchd): %v", EnvOrchd, err))
	}
	out, err := gobuild.Orchd(ctx, root, dir)
	if err != nil {
		Fail(fmt.Sprintf("in %s: %v", root, err))
	}
	return out
}

func tailFile(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
