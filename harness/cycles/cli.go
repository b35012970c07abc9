// Package cycles runs orchd through repeated grow / all-running / fell /
// zero-leak cycles against a live containerd and times each phase. It also
// holds CLI, the small wrapper the harness and the suites use to run the orchd
// binary with one namespace, state dir and project dir.
package cycles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/orchd/orchd/harness/settings"
	"github.com/orchd/orchd/orchd/platform"
)

// CLI runs one orchd binary against one namespace, state dir and project dir.
type CLI struct {
	// Orchd is the path of the orchd binary.
	Orchd string
	// Address is the containerd socket, passed as ORCHD_CONTAINERD_SOCKET
	// ("" for runtimes that need none).
	Address    string
	Namespace  string
	StateDir   string
	ProjectDir string
	// Home isolates orchd from the caller's ~/.orchrc; "" = <StateDir>/../home.
	Home string
	// Runtime and Platform default to containerd and orchdi.
	Runtime  string
	Platform string
	// Env is added to the child's environment (KEY=VALUE).
	Env []string
	// Observe, when set, is called with every finished invocation (the
	// suites add up where a spec's time goes).
	Observe func(Invocation)
	// Surveys, when set, answers Survey while no status file changed (see
	// SurveyCache); every other subcommand run through the CLI drops its answer.
	Surveys *SurveyCache
}

// Invocation is one finished orchd invocation.
type Invocation struct {
	Args     []string      `json:"args"`
	Stdout   string        `json:"stdout"`
	Stderr   string        `json:"stderr"`
	ExitCode int           `json:"exit_code"`
	Duration time.Duration `json:"duration_ns"`
}

// String renders the invocation for failure messages.
func (r Invocation) String() string {
	return fmt.Sprintf("orchd %s: exit %d after %s\n--- stdout\n%s\n--- stderr\n%s",
		strings.Join(r.Args, " "), r.ExitCode, r.Duration.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// Err is nil for exit 0, else an error carrying the output.
func (r Invocation) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return errors.New(r.String())
}

func (c CLI) globalFlags() []string {
	rt, pf := c.Runtime, c.Platform
	if rt == "" {
		rt = "containerd"
	}
	if pf == "" {
		pf = "orchdi"
	}
	return []string{
		"--namespace", c.Namespace,
		"--state-dir", c.StateDir,
		"--project-dir", c.ProjectDir,
		"--runtime", rt,
		"--platform", pf,
	}
}

// environ is the caller's environment without orchd settings that would
// override the flags, plus the socket and an isolated HOME.
func (c CLI) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "ORCH_") || k == settings.EnvSocket || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	home := c.Home
	if home == "" {
		home = filepath.Join(filepath.Dir(c.StateDir), "home")
	}
	env = append(env, "HOME="+home)
	if c.Address != "" {
		env = append(env, settings.EnvSocket+"="+c.Address)
	}
	return append(env, c.Env...)
}

// Run executes `orchd SUBCOMMAND ARGS... <global flags>`. A non-zero exit is
// reported in the Invocation, not as an error; err is for failing to run at all.
func (c CLI) Run(ctx context.Context, sub string, args ...string) (Invocation, error) {
	// Flags go before a "--" (exec SERVICE -- COMMAND), so what follows it
	// stays the command's own arguments.
	argv := []string{sub}
	if i := slices.Index(args, "--"); i >= 0 {
		argv = append(append(append(argv, args[:i]...), c.globalFlags()...), args[i:]...)
	} else {
		argv = append(append(argv, args...), c.globalFlags()...)
	}
	res := Invocation{Args: argv, ExitCode: -1}
	if sub != "survey" {
		// Before and after: what the command changes need not touch a status file.
		c.Surveys.Invalidate()
		defer c.Surveys.Invalidate()
	}
	// orchd runs in the project dir, with its own HOME.
	for _, d := range []string{c.home(), c.ProjectDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return res, fmt.Errorf("orchd %s: %w", sub, err)
		}
	}
	// Output goes to files, not pipes: supervisors that grow starts could
	// inherit a pipe and keep Wait from returning.
	out, err := os.CreateTemp("", "orchd-out-")
	if err != nil {
		return res, fmt.Errorf("orchd %s: %w", sub, err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	errf, err := os.CreateTemp("", "orchd-err-")
	if err != nil {
		return res, fmt.Errorf("orchd %s: %w", sub, err)
	}
	defer os.Remove(errf.Name())
	defer errf.Close()

	cmd := exec.CommandContext(ctx, c.Orchd, argv...)
	cmd.Dir = c.ProjectDir
	cmd.Env = c.environ()
	cmd.Stdout, cmd.Stderr = out, errf
	// Its own process group, so a cancelled context does not signal the caller's group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	res.Duration = time.Since(start)
	so, _ := os.ReadFile(out.Name())
	se, _ := os.ReadFile(errf.Name())
	res.Stdout, res.Stderr = string(so), string(se)
	if c.Observe != nil {
		c.Observe(res)
	}
	var ee *exec.ExitError
	switch {
	case runErr == nil:
		res.ExitCode = 0
	case errors.As(runErr, &ee):
		res.ExitCode = ee.ExitCode()
		if ctx.Err() != nil {
			return res, fmt.Errorf("orchd %s: %w", sub, ctx.Err())
		}
	default:
		return res, fmt.Errorf("orchd %s: %w", sub, runErr)
	}
	return res, nil
}

func (c CLI) home() string {
	if c.Home != "" {
		return c.Home
	}
	return filepath.Join(filepath.Dir(c.StateDir), "home")
}

// Survey runs `orchd survey --json` and decodes the rows.
func (c CLI) Survey(ctx context.Context) ([]platform.ServiceStatus, error) {
	var gen uint64
	if c.Surveys != nil {
		var rows []platform.ServiceStatus
		var ok bool
		if rows, ok, gen = c.Surveys.get(); ok {
			return rows, nil
		}
	}
	at := time.Now()
	res, err := c.Run(ctx, "survey", "--json")
	if err != nil {
		return nil, err
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	var rows []platform.ServiceStatus
	if err := json.Unmarshal([]byte(res.Stdout), &rows); err != nil {
		return nil, fmt.Errorf("decode survey: %w\n%s", err, res.Stdout)
	}
	if c.Surveys != nil {
		c.Surveys.put(rows, gen, at)
	}
	return rows, nil
}

// WriteOrchfile writes the project's Orchfile.
func (c CLI) WriteOrchfile(text string) error {
	if err := os.MkdirAll(c.ProjectDir, 0o700); err != nil {
		return fmt.Errorf("write Orchfile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.ProjectDir, "Orchfile"), []byte(text), 0o600); err != nil {
		return fmt.Errorf("write Orchfile: %w", err)
	}
	return nil
}
