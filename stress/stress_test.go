package stress

import (
	"strings"
	"testing"

	"github.com/orchd/orchd/harness/cycles"
	"github.com/orchd/orchd/orchd/spec"
)

func TestTemplatesParse(t *testing.T) {
	for _, name := range Names() {
		out, err := Render(name, Data{Image: "oci-layout:///x/probe", Services: 3, Name: "run1"})
		if err != nil {
			t.Fatal(err)
		}
		s, err := spec.Parse([]spec.Source{{Name: name, Data: []byte(out)}}, spec.Options{})
		if err != nil {
			t.Fatalf("%s does not parse: %v\n%s", name, err, out)
		}
		if len(s.Services) != 3 {
			t.Errorf("%s: %d services, want 3", name, len(s.Services))
		}
		for _, svc := range s.Services {
			if svc.Image != "oci-layout:///x/probe" || svc.Oneshot {
				t.Errorf("%s: service %s: image %q oneshot %v; want the probe, long-running", name, svc.Name, svc.Image, svc.Oneshot)
			}
		}
	}
	if _, err := Render("nope", Data{}); err == nil {
		t.Error("unknown template rendered")
	}
}

func TestGeneratedOrchfileParses(t *testing.T) {
	out := cycles.Orchfile("oci-layout:///x/probe", "sleep forever", 4)
	s, err := spec.Parse([]spec.Source{{Name: "gen", Data: []byte(out)}}, spec.Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(s.Services) != 4 || !strings.HasPrefix(s.Services[0].Name, "svc-") {
		t.Fatalf("services: %+v", s.Services)
	}
}
