package inception

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/orchd/orchd/harness/suiterun"
)

// collect takes the verdict from the files the guest wrote into dir (the
// shared reports dir): driver.json, leaks.json and each suite's Ginkgo JSON
// report. It copies them to r.o.ReportDir (when set) with the host's
// modes and writes the merged junit.xml and summary.json there, the same
// files `orchd-harness suites --report-dir` writes.
func (r *runner) collect(dir string, res *Result) error {
	dst := dir
	if r.o.ReportDir != "" {
		var err error
		if dst, err = filepath.Abs(r.o.ReportDir); err != nil {
			return err
		}
		if err := copyReports(dir, dst); err != nil {
			return fmt.Errorf("inception: reports: %w", err)
		}
	}
	res.ReportDir = dst
	var drv DriverReport
	if err := readJSON(filepath.Join(dst, DriverFile), &drv); err != nil {
		res.DriverDone, res.DriverPass = false, false
		res.Message = fmt.Sprintf("the driver never finished (%v)", err)
	} else {
		res.DriverDone, res.DriverPass, res.Message = true, drv.Message == "", drv.Message
		env := drv.Env
		res.Env = &env
	}
	var lk LeakReport
	if err := readJSON(filepath.Join(dst, LeaksFile), &lk); err != nil {
		res.InnerClean, res.InnerLeaks = false, fmt.Sprintf("no inner leak report (%v)", err)
	} else {
		res.InnerClean, res.InnerLeaks = lk.Empty, lk.Report
	}
	res.Suites = nil
	for _, name := range r.o.Suites {
		base := filepath.Join(dst, suiterun.BaseName(name))
		sr := suiterun.Result{Suite: name, Toolchain: r.o.Containerd, JUnit: base + ".junit.xml", JSON: base + ".json", Log: base + ".log"}
		suiterun.Verdict(&sr, nil)
		res.Suites = append(res.Suites, sr)
	}
	sum := suiterun.Summary{Suites: res.Suites, Toolchain: []string{r.o.Containerd}, Duration: res.RunTime}
	if err := suiterun.WriteSummary(dst, &sum); err != nil {
		r.progress("reports: %v", err)
	}
	return nil
}

// copyReports copies every regular file of src into dst, readable by all:
// the guest's files arrive owned by the unprivileged qemu user, mode 0600.
func copyReports(src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// sharedBytes is the total size of the files in dir: it grows while the
// guest's suites write their logs and reports.
func sharedBytes(dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// tailOf returns the last n lines of the file at path.
func tailOf(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		_, _ = f.Seek(fi.Size()-window, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(string(bytes.TrimRight(b, "\n")), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Show prints res to w (the table, or JSON with asJSON) and, when
// reportDir is set, also writes it there as inception.json.
func Show(w io.Writer, res *Result, asJSON bool, reportDir string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if asJSON {
		fmt.Fprintf(w, "%s\n", b)
	} else {
		PrintTable(w, res)
	}
	if reportDir == "" {
		return nil
	}
	if err := os.MkdirAll(reportDir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(reportDir, "inception.json"), append(b, '\n'), 0o644)
}
