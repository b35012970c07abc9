package suiterun

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

func TestDiscoverSuites(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"framework", "fanout", "inception", "empty", "leak"} {
		if err := os.MkdirAll(filepath.Join(root, "suites", d), 0o755); err != nil {
			t.Fatal(err)
		}
		if d != "empty" {
			if err := os.WriteFile(filepath.Join(root, "suites", d, "x_test.go"), []byte("package x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := discoverSuites(root, nil)
	if err != nil || !slices.Equal(got, []string{"fanout", "leak"}) {
		t.Fatalf("default suites = %v, %v; want fanout, leak (framework, suites without tests and inception excluded)", got, err)
	}
	if got, err := discoverSuites(root, []string{"inception"}); err != nil || !slices.Equal(got, []string{"inception"}) {
		t.Fatalf("named suites = %v, %v", got, err)
	}
	if _, err := discoverSuites(root, []string{"nope"}); err == nil {
		t.Fatal("an unknown suite was accepted")
	}
}

func TestCountSpecs(t *testing.T) {
	rep := []types.Report{{
		SuiteSucceeded: false,
		SpecReports: types.SpecReports{
			{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, State: types.SpecStatePassed},
			{LeafNodeType: types.NodeTypeIt, State: types.SpecStatePassed, LeafNodeText: "a"},
			{LeafNodeType: types.NodeTypeIt, State: types.SpecStateFailed, LeafNodeText: "b"},
			{LeafNodeType: types.NodeTypeIt, State: types.SpecStateTimedout, LeafNodeText: "c"},
			{LeafNodeType: types.NodeTypeIt, State: types.SpecStateSkipped, LeafNodeText: "d"},
			{LeafNodeType: types.NodeTypeSynchronizedAfterSuite, State: types.SpecStateFailed, Failure: types.Failure{Message: "stop failed\nmore"}},
		},
	}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	r := Result{JSON: filepath.Join(t.TempDir(), "r.json")}
	if err := os.WriteFile(r.JSON, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := countSpecs(&r); err != nil {
		t.Fatal(err)
	}
	if r.Specs != 4 || r.Passed != 1 || r.Failed != 3 || r.Skipped != 1 {
		t.Fatalf("specs %d passed %d failed %d skipped %d; want 4 1 3 1 (the failed AfterSuite counts as a failure)", r.Specs, r.Passed, r.Failed, r.Skipped)
	}
	if !slices.Contains(r.Failures, "[SynchronizedAfterSuite] stop failed") {
		t.Fatalf("failures %q", r.Failures)
	}
	missing := Result{JSON: filepath.Join(t.TempDir(), "none.json")}
	if err := countSpecs(&missing); err == nil {
		t.Fatal("a missing report is not an error")
	}
}

func TestMergeJUnitKeepsSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a.junit.xml", `<testsuites tests="2" failures="1"><testsuite name="a" tests="2" failures="1"></testsuite></testsuites>`)
	b := write("b.junit.xml", `<testsuites tests="3"><testsuite name="b" tests="3"></testsuite></testsuites>`)
	dst := filepath.Join(dir, "junit.xml")
	if err := MergeJUnit([]string{a, b}, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`tests="5"`, `failures="1"`, `name="a"`, `name="b"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("merged junit.xml lacks %s:\n%s", want, got)
		}
	}
	for _, src := range []string{a, b} {
		if _, err := os.Stat(src); err != nil {
			t.Errorf("per-suite report %s removed: %v", src, err)
		}
	}
}

func TestTailLinesStreamsAsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.specs")
	got := make(chan string, 10)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); tailLines(path, stop, func(l string) { got <- l }) }()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("PASSED 1.0s first\nFAIL")
	select {
	case l := <-got:
		if l != "PASSED 1.0s first" {
			t.Fatalf("first line %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a complete line was not streamed while the writer ran")
	}
	f.WriteString("ED 2.0s second\n")
	close(stop)
	<-done
	if l := <-got; l != "FAILED 2.0s second" {
		t.Fatalf("second line %q", l)
	}
}

func TestVerdictTakesTheReportsRunTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.json")
	b, _ := json.Marshal([]types.Report{{RunTime: 3 * time.Second, SpecReports: types.SpecReports{{LeafNodeType: types.NodeTypeIt, State: types.SpecStatePassed}}}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := Result{JSON: path}
	Verdict(&r, nil)
	if !r.OK || r.Duration != 3*time.Second {
		t.Fatalf("Verdict: ok %v duration %v, want ok 3s", r.OK, r.Duration)
	}
}
