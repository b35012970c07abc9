// Package matrix builds the conformance matrix, suite x toolchain x OCI
// runtime x host/vm, from the report files the suites write
// (ORCHD_REPORT_DIR): each <suite>-<stack>.env.json names the stack, the
// Ginkgo JSON report beside it (<suite>-<stack>.json) holds the results.
// Files written inside the inception VM (where "vm") fit the same table.
package matrix

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/onsi/ginkgo/v2/types"
)

// EnvSuffix ends the file that names a report's stack.
const EnvSuffix = ".env.json"

// DeviationEntry prefixes the report entry a spec adds when it meets a
// documented deviation ("expected deviation <name>").
const DeviationEntry = "expected deviation "

// Stack is one column of the matrix: what an env.json file names.
type Stack struct {
	Where      string `json:"where"`
	CgroupMode string `json:"cgroup_mode"`
	Toolchain  string `json:"toolchain"`
	Containerd string `json:"containerd"`
	OCIRuntime string `json:"oci_runtime"`
}

// Key is the stack as one line: "host v1 v2.2.1 runc".
func (s Stack) Key() string {
	return strings.Join([]string{s.Where, s.CgroupMode, cmp.Or(s.Toolchain, "external"), s.OCIRuntime}, " ")
}

// Counts are the results in one Ginkgo JSON report.
type Counts struct {
	Specs   int `json:"specs"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	// Failures name the failed specs (or suite nodes).
	Failures []string `json:"failures,omitempty"`
	// Deviations are the documented deviations the specs met, by name.
	Deviations []string `json:"deviations,omitempty"`
}

// Cell is one suite on one stack.
type Cell struct {
	Suite string `json:"suite"`
	Stack Stack  `json:"stack"`
	Counts
	OK bool `json:"ok"`
	// Error says why the cell has no usable results (no Ginkgo report).
	Error string `json:"error,omitempty"`
	// Report is the Ginkgo JSON report the cell was read from.
	Report string `json:"report"`
}

// Matrix is every cell found in a report dir.
type Matrix struct {
	Cells []Cell `json:"cells"`
	OK    bool   `json:"ok"`
}

// envFile is what the suites write as <suite>-<stack>.env.json.
type envFile struct {
	Suite string `json:"suite"`
	Stack
}

// Read builds the matrix from every *.env.json under dir and its subdirs
// (CI keeps the VM's reports in a dir of their own beside the host's).
// A dir without any is an error: a matrix of nothing proves nothing.
func Read(dir string) (*Matrix, error) {
	var envs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, EnvSuffix) {
			envs = append(envs, p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("matrix: %w", err)
	}
	if len(envs) == 0 {
		return nil, fmt.Errorf("matrix: no *%s report in %s (run the suites with ORCHD_REPORT_DIR=%s or orchd-harness suites --report-dir %s)", EnvSuffix, dir, dir, dir)
	}
	m := &Matrix{OK: true}
	var errs []error
	for _, p := range envs {
		c, err := readCell(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.Cells = append(m.Cells, c)
		m.OK = m.OK && c.OK
	}
	if len(m.Cells) == 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(m.Cells, func(a, b Cell) int {
		return cmp.Or(cmp.Compare(a.Suite, b.Suite), cmp.Compare(a.Stack.Key(), b.Stack.Key()))
	})
	return m, errors.Join(errs...)
}

func readCell(envPath string) (Cell, error) {
	b, err := os.ReadFile(envPath)
	if err != nil {
		return Cell{}, fmt.Errorf("matrix: %w", err)
	}
	var e envFile
	if err := json.Unmarshal(b, &e); err != nil {
		return Cell{}, fmt.Errorf("matrix: %s: %w", envPath, err)
	}
	base := strings.TrimSuffix(envPath, EnvSuffix)
	if e.Suite == "" {
		// Older files carry no suite name; it is the file name's first word.
		e.Suite, _, _ = strings.Cut(filepath.Base(base), "-")
	}
	c := Cell{Suite: e.Suite, Stack: e.Stack, Report: base + ".json"}
	if c.Counts, err = CountReport(c.Report); err != nil {
		c.Error = err.Error()
	}
	if c.Error == "" && c.Passed == 0 {
		c.Error = "no spec passed"
	}
	c.OK = c.Error == "" && c.Failed == 0
	return c, nil
}

// CountReport reads a Ginkgo JSON report: It specs by outcome, failed
// suite nodes (a failed BeforeSuite counts as a failure), deviations met.
func CountReport(path string) (Counts, error) {
	var c Counts
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("no Ginkgo report: %w", err)
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return c, fmt.Errorf("decode %s: %w", path, err)
	}
	for _, rep := range reports {
		for _, s := range rep.SpecReports {
			for _, e := range s.ReportEntries {
				if name, ok := strings.CutPrefix(e.Name, DeviationEntry); ok && !slices.Contains(c.Deviations, name) {
					c.Deviations = append(c.Deviations, name)
				}
			}
			if s.LeafNodeType != types.NodeTypeIt {
				if s.State.Is(types.SpecStateFailureStates) {
					c.Failed++
					c.Failures = append(c.Failures, fmt.Sprintf("[%s] %s", s.LeafNodeType, firstLine(s.Failure.Message)))
				}
				continue
			}
			c.Specs++
			switch {
			case s.State == types.SpecStatePassed:
				c.Passed++
			case s.State.Is(types.SpecStateFailureStates):
				c.Failed++
				c.Failures = append(c.Failures, s.FullText())
			default:
				c.Skipped++
			}
		}
	}
	slices.Sort(c.Deviations)
	return c, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Stacks are the matrix's columns, sorted.
func (m *Matrix) Stacks() []Stack {
	var out []Stack
	for _, c := range m.Cells {
		if !slices.ContainsFunc(out, func(s Stack) bool { return s.Key() == c.Stack.Key() }) {
			out = append(out, c.Stack)
		}
	}
	slices.SortFunc(out, func(a, b Stack) int { return cmp.Compare(a.Key(), b.Key()) })
	return out
}

// Suites are the matrix's rows, sorted.
func (m *Matrix) Suites() []string {
	var out []string
	for _, c := range m.Cells {
		if !slices.Contains(out, c.Suite) {
			out = append(out, c.Suite)
		}
	}
	slices.Sort(out)
	return out
}

// WriteJSON writes the matrix as JSON.
func (m *Matrix) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteMarkdown writes the matrix: one row per suite, one column per stack
// (PASS passed/specs, with the deviations met), then the failures.
func (m *Matrix) WriteMarkdown(w io.Writer) error {
	stacks := m.Stacks()
	var b strings.Builder
	b.WriteString("| suite |")
	for _, s := range stacks {
		fmt.Fprintf(&b, " %s<br>containerd %s |", s.Key(), s.Containerd)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(stacks)) + "\n")
	for _, suite := range m.Suites() {
		fmt.Fprintf(&b, "| %s |", suite)
		for _, s := range stacks {
			i := slices.IndexFunc(m.Cells, func(c Cell) bool { return c.Suite == suite && c.Stack.Key() == s.Key() })
			if i < 0 {
				b.WriteString(" - |")
				continue
			}
			fmt.Fprintf(&b, " %s |", m.Cells[i].summary())
		}
		b.WriteString("\n")
	}
	result := "PASS"
	if !m.OK {
		result = "FAIL"
	}
	fmt.Fprintf(&b, "\nresult: %s (%d cells)\n", result, len(m.Cells))
	for _, c := range m.Cells {
		for _, f := range c.Failures {
			fmt.Fprintf(&b, "- FAILED %s on %s: %s\n", c.Suite, c.Stack.Key(), f)
		}
		if c.Error != "" {
			fmt.Fprintf(&b, "- FAILED %s on %s: %s\n", c.Suite, c.Stack.Key(), c.Error)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// summary is a cell's text: "PASS 23/23, deviations: a, b".
func (c Cell) summary() string {
	res := "PASS"
	if !c.OK {
		res = "FAIL"
	}
	s := fmt.Sprintf("%s %d/%d", res, c.Passed, c.Specs)
	if c.Failed > 0 {
		s += fmt.Sprintf(", %d failed", c.Failed)
	}
	if c.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", c.Skipped)
	}
	if len(c.Deviations) > 0 {
		s += ", deviations: " + strings.Join(c.Deviations, ", ")
	}
	return s
}

// Write puts matrix.md and matrix.json into dir.
func (m *Matrix) Write(dir string) error {
	var md, js strings.Builder
	if err := m.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := m.WriteJSON(&js); err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "matrix.md"), []byte(md.String()), 0o644),
		os.WriteFile(filepath.Join(dir, "matrix.json"), []byte(js.String()), 0o644),
	)
}
