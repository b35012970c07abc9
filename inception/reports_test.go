package inception

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/orchd/orchd/orchd/contract"
)

// writeReport writes a Ginkgo JSON report with one It per entry of specs
// (name -> passed).
func writeReport(t *testing.T, path string, specs map[string]bool) {
	t.Helper()
	rep := types.Report{SuiteSucceeded: true}
	for name, ok := range specs {
		s := types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: name, State: types.SpecStatePassed}
		if !ok {
			s.State = types.SpecStateFailed
			rep.SuiteSucceeded = false
		}
		rep.SpecReports = append(rep.SpecReports, s)
	}
	b, err := json.Marshal([]types.Report{rep})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func shared(t *testing.T, innerOK bool, withDriver bool) string {
	t.Helper()
	dir := t.TempDir()
	writeReport(t, filepath.Join(dir, "inception-inner.json"), map[string]bool{"has the CPUS": innerOK, "has the MEMORY": true})
	writeReport(t, filepath.Join(dir, "oneshot.json"), map[string]bool{"runs once": true})
	for _, f := range []string{"inception-inner.junit.xml", "oneshot.junit.xml"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("<testsuites></testsuites>"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeJSONFile(filepath.Join(dir, LeaksFile), LeakReport{Empty: true}); err != nil {
		t.Fatal(err)
	}
	if withDriver {
		if err := writeJSONFile(filepath.Join(dir, DriverFile), DriverReport{Env: GuestEnv{CgroupMode: "v2"}}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func collectFrom(t *testing.T, dir string) *Result {
	t.Helper()
	out := t.TempDir()
	r := &runner{o: Options{Suites: []string{"inception/inner", "oneshot"}, ReportDir: out, Containerd: "system"}, out: io.Discard}
	res := &Result{DriverDone: true, DriverPass: true} // what a console "done" line claimed
	if err := r.collect(dir, res); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"inception-inner.json", "oneshot.junit.xml", "junit.xml", "summary.json"} {
		fi, err := os.Stat(filepath.Join(out, f))
		if err != nil {
			t.Fatalf("report dir: %v", err)
		}
		if f != "junit.xml" && f != "summary.json" && fi.Mode().Perm() != 0o644 {
			t.Errorf("%s copied with mode %v, want 0644", f, fi.Mode().Perm())
		}
	}
	return res
}

// The verdict comes from the files: a failed spec in a report fails the run
// and is named, whatever the console said.
func TestCollectVerdictFromReportFiles(t *testing.T) {
	res := collectFrom(t, shared(t, true, true))
	if !res.Passed() {
		t.Fatalf("all reports passed, verdict FAIL: %+v", res.Suites)
	}
	if res.Env == nil || res.Env.CgroupMode != "v2" {
		t.Errorf("env from driver.json: %+v", res.Env)
	}

	res = collectFrom(t, shared(t, false, true))
	if res.Passed() {
		t.Fatal("a failed spec in inception-inner.json, verdict PASS")
	}
	var b strings.Builder
	PrintTable(&b, res)
	if !strings.Contains(b.String(), "failed: has the CPUS") {
		t.Errorf("the table does not name the failed spec:\n%s", b.String())
	}

	res = collectFrom(t, shared(t, true, false))
	if res.Passed() || res.DriverDone {
		t.Fatalf("no driver.json, verdict PASS (driver done %v)", res.DriverDone)
	}
}

// A run that shows no progress (no console line, no report byte) fails once
// the stall bound passes, with the console's tail.
func TestFollowFailsAStalledRun(t *testing.T) {
	state, reports := t.TempDir(), t.TempDir()
	layout := contract.Layout{StateDir: state}
	label := contract.Label(Namespace, ServiceName)
	if err := os.MkdirAll(filepath.Dir(layout.LogFile(label)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(layout.LogFile(label), []byte("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [runc:1234]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &runner{o: Options{Stall: 300 * time.Millisecond}, out: io.Discard}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := r.follow(ctx, layout, label, reports, &Result{})
	if err == nil || !strings.Contains(err.Error(), "stalled") || !strings.Contains(err.Error(), "soft lockup") {
		t.Fatalf("follow: %v; want a stall error with the console tail", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the stall was noticed after %v", time.Since(start))
	}
}
