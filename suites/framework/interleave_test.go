package framework

import (
	"testing"

	"github.com/orchd/orchd/fixtures/probe/report"
)

func TestProbeStderrRemovalRestoresTheReport(t *testing.T) {
	r := &report.Report{Args: []string{"/probe", "report"}, Hostname: "align", Rlimits: map[string]report.Rlimit{"NOFILE": {Soft: 1, Hard: 2}}}
	line, err := r.Line()
	if err != nil {
		t.Fatal(err)
	}
	s := string(line)
	mixed := s[:20] + "probe: sleep: ready pid 1\n" + s[20:]
	if _, err := report.Find([]byte(mixed)); err == nil {
		t.Fatal("the interleaved line parsed as is; the test proves nothing")
	}
	got, err := report.Find([]byte(probeStderr.ReplaceAllString(mixed, "")))
	if err != nil || got.Hostname != "align" {
		t.Fatalf("after removal: %v %+v", err, got)
	}
}
