// Package badinput proves that orchd refuses malformed input with a clear
// error, a non-zero exit status, and without creating or leaking anything.
package badinput

import (
	"bytes"
	"context"
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

	"github.com/orchd/orchd/suites/framework"
)

var fw = framework.New("badinput", framework.Options{})

func TestBadInput(t *testing.T) { framework.RunSuite(t, "badinput") }

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

// sandbox is one spec's private world (namespace, project dir, state dir,
// HOME without .orchrc) from the framework, plus a Root for canaries.
type sandbox struct {
	*framework.Spec
	Root, Project, State, Home string
}

func newSandbox() *sandbox {
	sp := fw.NewSpec()
	return &sandbox{Spec: sp, Root: sp.Dir, Project: sp.ProjectDir, State: sp.StateDir, Home: sp.CLI.Home}
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
	out = append(out, "HOME="+s.Home, "ORCHD_CONTAINERD_SOCKET="+fw.Daemon.Address)
	return append(out, extra...)
}

// orchd runs the orchd binary with stdin (may be nil) in the sandbox.
func (s *sandbox) orchd(ctx context.Context, stdin io.Reader, env []string, args ...string) result {
	cmd := exec.CommandContext(ctx, fw.Orchd, args...)
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

// expectNothingCreated asserts that the state dir holds no file, that no
// process mentions the sandbox on its command line, and that containerd holds
// nothing for the namespace.
func (s *sandbox) expectNothingCreated(ctx context.Context) {
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
	s.ExpectNoLeaks(ctx)
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
