package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Env is the machine, toolchain and load a run saw.
type Env struct {
	Date       string `json:"date"`
	CPU        string `json:"cpu"`
	Cores      int    `json:"cores"`
	MemGiB     int    `json:"mem_gib"`
	Kernel     string `json:"kernel"`
	Cgroup     string `json:"cgroup"`
	Containerd string `json:"containerd"`
	Toolchain  string `json:"toolchain"`
	Go         string `json:"go"`
	// LoadBefore and LoadAfter are /proc/loadavg's 1, 5 and 15 minute averages.
	LoadBefore string `json:"load_before"`
	LoadAfter  string `json:"load_after"`
}

func probeEnv(_ context.Context, opts Options) Env {
	e := Env{Date: time.Now().UTC().Format("2006-01-02 15:04 MST"), Cores: runtime.NumCPU(), Go: runtime.Version(),
		Toolchain: opts.Toolchain, LoadBefore: loadavg()}
	e.CPU = procLine("/proc/cpuinfo", "model name")
	if kb := procLine("/proc/meminfo", "MemTotal"); kb != "" {
		var v int64
		fmt.Sscanf(kb, "%d", &v)
		e.MemGiB = int((v + 512*1024) / (1024 * 1024))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	switch {
	case exists("/sys/fs/cgroup/cgroup.controllers"):
		e.Cgroup = "v2"
	case exists("/sys/fs/cgroup/unified"):
		e.Cgroup = "v1 (hybrid)"
	default:
		e.Cgroup = "v1"
	}
	return e
}

func (e *Env) finish() { e.LoadAfter = loadavg() }

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// procLine returns the value of the first "key: value" line of a /proc file.
func procLine(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// EnvMarkdown prints the machine, toolchain, date and load lines.
func EnvMarkdown(w io.Writer, e Env) {
	fmt.Fprintf(w, "- date: %s\n", e.Date)
	fmt.Fprintf(w, "- machine: %d cores (%s), %d GiB, Linux %s, cgroup %s\n", e.Cores, e.CPU, e.MemGiB, e.Kernel, e.Cgroup)
	fmt.Fprintf(w, "- toolchain: containerd %s (%s), orchd built with %s\n", e.Containerd, e.Toolchain, e.Go)
	fmt.Fprintf(w, "- load average (1, 5, 15 min) before: %s, after: %s on %d cores\n", e.LoadBefore, e.LoadAfter, e.Cores)
}

// Markdown prints the result as the table docs/performance.md holds.
func Markdown(w io.Writer, r *Result, command string) {
	fmt.Fprintf(w, "`%s`: N = %d, %d rounds, %.0f s wall.\n\n", command, r.Services, r.Rounds, r.Seconds)
	EnvMarkdown(w, r.Env)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Figures are medians over every round, [min-max] beside. Ratio = orchd / baseline, lower is better;")
	fmt.Fprintln(w, "a baseline marked *target* is a constant goal, not a measurement.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| metric | orchd | baseline | ratio | target ratio | baseline is | also measured (ratio) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, m := range r.Metrics {
		base := fmt.Sprintf("%s %s", num(m.Baseline), m.Unit)
		against := m.Against
		if m.Target {
			base, against = "*"+base+"*", "*"+against+"*"
		} else {
			base += " " + spread(m.BaselineMin, m.BaselineMax)
		}
		goal, verdict := "-", ""
		if m.RatioTarget > 0 {
			goal = fmt.Sprintf("<= %.2f", m.RatioTarget)
			verdict = " (met)"
			if m.Ratio > m.RatioTarget {
				verdict = " (**not met**)"
			}
		}
		var also []string
		for _, s := range m.Beside {
			also = append(also, fmt.Sprintf("%s: %s %s %s (%.2fx)", s.Against, num(s.Median), m.Unit, spread(s.Min, s.Max), s.Ratio))
		}
		fmt.Fprintf(w, "| %s | %s %s %s | %s | %.2fx%s | %s | %s | %s |\n", m.Name, num(m.Orchd), m.Unit, spread(m.Min, m.Max),
			base, m.Ratio, verdict, goal, against, dashIfEmpty(strings.Join(also, "; ")))
	}
}

func spread(lo, hi float64) string { return fmt.Sprintf("[%s-%s]", num(lo), num(hi)) }

// num prints 3 significant-ish digits.
func num(v float64) string {
	switch a := abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
