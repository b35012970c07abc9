package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchSmall runs the whole benchmark at N = 4, one round, on a private
// containerd, so the bench cannot rot: every metric must be present and
// finite. It asserts no timing.
func TestBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the bench needs a private containerd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	s := Setup{Format: FormatJSON, Options: Options{Services: 4, Rounds: 1, SingleRounds: 1, Restarts: 2}}
	if err := Main(ctx, s, &out, &progress); err != nil {
		t.Fatalf("bench: %v\n%s", err, progress.String())
	}
	var res Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out.String())
	}
	if err := Check(res.Metrics); err != nil {
		t.Fatal(err)
	}
	want := []string{"fan-out", "teardown", "peak RSS", "PSS", "containerd RSS", "single start to RUNNING, p50",
		"single start to RUNNING, p95", "crash-restart", "parse"}
	for _, w := range want {
		found := false
		for _, m := range res.Metrics {
			found = found || strings.Contains(m.Name, w)
		}
		if !found {
			t.Errorf("no metric named %q in %s", w, out.String())
		}
	}
	for _, m := range res.Metrics {
		if strings.HasPrefix(m.Name, "fan-out") || strings.HasPrefix(m.Name, "teardown") {
			if m.Against != FloorName || len(m.Beside) != 2 {
				t.Errorf("%s: against %q with %d beside, want the in-process floor with both ctr baselines", m.Name, m.Against, len(m.Beside))
			}
		}
	}
	for _, key := range []string{`"orchd"`, `"baseline"`, `"ratio"`, `"against"`, `"min"`, `"max"`} {
		if !strings.Contains(out.String(), key) {
			t.Errorf("bench --json lacks %s", key)
		}
	}
}

// TestBenchScaleSmall runs --scale 2 and checks the plot is written.
func TestBenchScaleSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the bench needs a private containerd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var out, progress bytes.Buffer
	s := Setup{Format: FormatMarkdown, Scale: []int{2}, ReportDir: dir, Options: Options{Rounds: 1}}
	if err := Main(ctx, s, &out, &progress); err != nil {
		t.Fatalf("bench --scale: %v\n%s", err, progress.String())
	}
	svg, err := os.ReadFile(filepath.Join(dir, "scale.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("orchd grow")) {
		t.Errorf("scale.svg is not the curve:\n%.300s", svg)
	}
	if !strings.Contains(out.String(), "![fan-out and teardown against N](scale.svg)") || !strings.Contains(out.String(), "| 2 |") {
		t.Errorf("--markdown does not embed the plot or lacks N=2:\n%s", out.String())
	}
	var res ScaleResult
	b, err := os.ReadFile(filepath.Join(dir, "scale.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil || len(res.Points) != 1 {
		t.Fatalf("scale.json: %v, %d points", err, len(res.Points))
	}
}
