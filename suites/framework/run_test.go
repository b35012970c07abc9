package framework

import (
	"slices"
	"testing"
)

func TestMatrixArgsSuffixReports(t *testing.T) {
	in := []string{"-test.v", "-ginkgo.junit-report=r/a.xml", "--ginkgo.json-report", "r/a.json", "-ginkgo.label-filter", "x"}
	want := []string{"-test.v", "-ginkgo.junit-report=r/a-system.xml", "--ginkgo.json-report", "r/a-system.json", "-ginkgo.label-filter", "x"}
	if got := matrixArgs(in, "system"); !slices.Equal(got, want) {
		t.Fatalf("matrixArgs:\n got %q\nwant %q", got, want)
	}
	if got := suffixPath("dir.d/report", "v2.2.1"); got != "dir.d/report-v2.2.1" {
		t.Fatalf("suffixPath without extension: %q", got)
	}
}
