package bench

import (
	"testing"

	"github.com/orchd/orchd/orchd/spec"
)

func noEnv(string) (string, bool) { return "", false }

func TestGeneratedOrchfileParses(t *testing.T) {
	base, o1, o2 := GenerateOrchfile(50)
	s, err := spec.Parse([]spec.Source{{Name: "Orchfile", Data: base}, {Name: "dev.orch", Data: o1}, {Name: "ci.orch", Data: o2}}, spec.Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Services) != 50 {
		t.Fatalf("%d services, want 50", len(s.Services))
	}
	svc, _ := s.Service("svc-0")
	if svc.Env["ONLY"] != "this" || svc.Env["MODE"] != "" || svc.Image != "registry.example/app-0:v2" {
		t.Errorf("overlays not applied: env %v image %q", svc.Env, svc.Image)
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	if got := percentile(v, 50); got != 3 {
		t.Errorf("p50 = %v", got)
	}
	if got := percentile(v, 95); got != 5 {
		t.Errorf("p95 = %v", got)
	}
	if got := percentile(nil, 50); finite(got) {
		t.Errorf("empty p50 = %v, want NaN (a missing figure Check reports)", got)
	}
}
