package orchard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
)

// LogsOptions control logs.
type LogsOptions struct {
	platform.LogOptions
	// NoPrefix leaves lines as the service wrote them; otherwise each line
	// starts with the service name.
	NoPrefix bool
	// Color colours the prefixes (a terminal).
	Color bool
}

// Logs writes the logs of the named services (every service with state or a
// kept log in the namespace when none are named), each line prefixed with its
// service, following them together when opts.Follow until all have ended.
func Logs(ctx context.Context, c *config.Config, services []string, w io.Writer, opts LogsOptions) error {
	env, p, _, err := setup(c)
	if err != nil {
		return err
	}
	known, err := logServices(ctx, p, env)
	if err != nil {
		return err
	}
	for _, n := range services {
		if !slices.Contains(known, n) {
			return unknownService(n, known)
		}
	}
	if len(services) == 0 {
		services = known
	}
	if opts.NeedsTimes() {
		// Refuse before printing anything: a service whose output has no
		// per-line times fails a zero-line read with the reason.
		check := platform.LogOptions{Timestamps: opts.Timestamps, Since: opts.Since}
		for _, n := range services {
			if err := p.Logs(ctx, env, n, io.Discard, check); err != nil {
				return err
			}
		}
	}
	width := 0
	for _, n := range services {
		width = max(width, len(n))
	}
	var mu sync.Mutex // one line at a time
	errs := make([]error, len(services))
	var wg sync.WaitGroup
	for i, n := range services {
		pw := &prefixWriter{mu: &mu, w: w}
		if !opts.NoPrefix {
			pw.prefix = fmt.Sprintf("%-*s | ", width, n)
			if opts.Color {
				pw.prefix = fmt.Sprintf("\x1b[%dm%s\x1b[0m", colors[i%len(colors)], pw.prefix)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Logs(ctx, env, n, pw, opts.LogOptions)
			if err := pw.flush(); errs[i] == nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// colors are the ANSI foreground colours prefixes cycle through.
var colors = []int{36, 33, 32, 35, 34, 96, 93, 92, 95, 94}

// logServices are the services with state in the namespace plus those whose
// log was kept after fell.
func logServices(ctx context.Context, p platform.Platform, env contract.Env) ([]string, error) {
	rows, err := p.Survey(ctx, env)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range rows {
		out = append(out, r.Name)
	}
	l := contract.Layout{StateDir: env.StateDir}
	// <ns>.<svc>.log (not <svc>.supervise.log), and <ns>.<svc>.paths.json
	// for a service whose STDOUT/STDERR went to its own files.
	for _, suffix := range []string{".log", ".paths.json"} {
		logs, _ := filepath.Glob(filepath.Join(l.LogDir(), env.Namespace+".*"+suffix))
		for _, f := range logs {
			name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), env.Namespace+"."), suffix)
			if !strings.Contains(name, ".") {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// prefixWriter writes whole lines, each after prefix, under a shared lock so
// that lines of concurrently followed services never interleave.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	i := bytes.LastIndexByte(p.buf, '\n')
	if i < 0 {
		return len(b), nil
	}
	err := p.emit(p.buf[:i+1])
	p.buf = append(p.buf[:0], p.buf[i+1:]...)
	return len(b), err
}

// flush writes a last line that had no newline.
func (p *prefixWriter) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	err := p.emit(append(p.buf, '\n'))
	p.buf = p.buf[:0]
	return err
}

func (p *prefixWriter) emit(lines []byte) error {
	var out bytes.Buffer
	for line := range bytes.Lines(lines) {
		out.WriteString(p.prefix)
		out.Write(line)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.w.Write(out.Bytes())
	return err
}

// ParseLines reads how many lines logs prints of each log: "all" (-1) or a
// count >= 0.
func ParseLines(s string) (int, error) {
	if s == "all" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("-n %q: want a number of lines >= 0, or all", s)
	}
	return n, nil
}

// ParseSince reads --since as compose does: an RFC 3339 time, or a Go
// duration counted back from now. "" is no bound.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: a duration counts back from now and cannot be negative (write 10m for ten minutes ago)", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-12-01T14:00:00Z) or a duration before now (10m, 1h30m)", s)
}
