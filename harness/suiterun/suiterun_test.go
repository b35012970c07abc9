package suiterun

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

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
