// Package badinput proves that orchd refuses malformed input with a clear
// error, a non-zero exit status, and without creating or leaking anything.
package badinput

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestBadInput(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "bad input")
}

// orchdBin is the orchd binary built once for the suite (set in BeforeSuite, read-only after).
var orchdBin string

var _ = SynchronizedBeforeSuite(func(ctx SpecContext) []byte {
	// ORCHD_BINARY tests a prebuilt orchd (e.g. a release build) instead.
	if bin := os.Getenv("ORCHD_BINARY"); bin != "" {
		Expect(bin).To(BeAnExistingFile(), "ORCHD_BINARY")
		return []byte(bin)
	}
	dir, err := os.MkdirTemp("", "orchd-badinput-bin-")
	Expect(err).NotTo(HaveOccurred())
	bin := filepath.Join(dir, "orchd")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/orchd/orchd/cmd/orchd").CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build ./cmd/orchd:\n%s", out)
	return []byte(bin)
}, func(b []byte) {
	orchdBin = string(b)
}, NodeTimeout(5*60e9))

var _ = SynchronizedAfterSuite(func() {}, func() {
	if orchdBin != "" && os.Getenv("ORCHD_BINARY") == "" {
		os.RemoveAll(filepath.Dir(orchdBin))
	}
})

// result is one orchd invocation's outcome.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.Code) + "\nstdout:\n" + clip(r.Stdout) + "\nstderr:\n" + clip(r.Stderr)
}

func clip(s string) string {
	if len(s) > 4000 {
		return s[:4000] + "...(clipped)"
	}
	return s
}

// sandbox is one spec's private world: a project dir, a state dir that does not
// exist yet, a HOME without .orchrc, and a unique namespace.
type sandbox struct {
	Root, Project, State, Home, Namespace string
}

func newSandbox() *sandbox {
	root := GinkgoT().TempDir()
	s := &sandbox{
		Root:      root,
		Project:   filepath.Join(root, "project"),
		State:     filepath.Join(root, "state"),
		Home:      filepath.Join(root, "home"),
		Namespace: "bi-" + randSuffix(),
	}
	Expect(os.MkdirAll(s.Project, 0o700)).To(Succeed())
	Expect(os.MkdirAll(s.Home, 0o700)).To(Succeed())
	return s
}

// randSuffix makes namespaces unique across processes and runs.
func randSuffix() string {
	b := make([]byte, 4)
	_, err := rand.Read(b)
	Expect(err).NotTo(HaveOccurred())
	return hex.EncodeToString(b)
}

// write puts content into the project dir and returns its path.
func (s *sandbox) write(name string, content []byte) string {
	p := filepath.Join(s.Project, name)
	Expect(os.MkdirAll(filepath.Dir(p), 0o700)).To(Succeed())
	Expect(os.WriteFile(p, content, 0o600)).To(Succeed())
	return p
}

// globals are the flags that pin every setting to the sandbox.
func (s *sandbox) globals(extra ...string) []string {
	return append([]string{"--project-dir", s.Project, "--state-dir", s.State, "--namespace", s.Namespace, "--platform", "orchdi"}, extra...)
}

// env is a clean environment: no ORCH_* / ORCHD_* from the caller, HOME in the sandbox.
func (s *sandbox) env(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ORCH_") || strings.HasPrefix(kv, "ORCHD_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	return append(append(out, "HOME="+s.Home), extra...)
}

// orchd runs the orchd binary with stdin (may be nil) in the sandbox.
func (s *sandbox) orchd(ctx context.Context, stdin io.Reader, env []string, args ...string) result {
	cmd := exec.CommandContext(ctx, orchdBin, args...)
	cmd.Dir = s.Project
	cmd.Env = env
	if env == nil {
		cmd.Env = s.env()
	}
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		Fail("run orchd " + strings.Join(args, " ") + ": " + err.Error())
	}
	return r
}

// expectRefused asserts a non-zero exit and that stderr holds every want.
func expectRefused(r result, wants ...string) {
	GinkgoHelper()
	Expect(r.Code).NotTo(BeZero(), "orchd must fail:\n%s", r)
	Expect(r.Stderr).NotTo(BeEmpty(), "orchd must say why:\n%s", r)
	// A clear error is short: input is named, not echoed wholesale.
	Expect(len(r.Stderr)).To(BeNumerically("<", 64<<10), "error output is unbounded:\n%s", r)
	for _, w := range wants {
		Expect(r.Stderr).To(ContainSubstring(w), "error must mention %q:\n%s", w, r)
	}
}

// expectNothingCreated asserts that the state dir holds no file and that no
// process mentions the sandbox on its command line.
func (s *sandbox) expectNothingCreated() {
	GinkgoHelper()
	var files []string
	err := filepath.WalkDir(s.State, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if !errors.Is(err, fs.ErrNotExist) {
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(files).To(BeEmpty(), "a refused command must create nothing in the state dir")
	Expect(processesMentioning(s.Root)).To(BeEmpty(), "a refused command must start nothing")
}

// processesMentioning lists "pid: cmdline" of processes whose argv contains needle.
func processesMentioning(needle string) []string {
	ents, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	var out []string
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		cl := strings.ReplaceAll(string(bytes.TrimRight(b, "\x00")), "\x00", " ")
		if strings.Contains(cl, needle) {
			out = append(out, e.Name()+": "+cl)
		}
	}
	return out
}
