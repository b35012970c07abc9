package orchard

import (
	"bytes"
	"strings"
	"syscall"
	"testing"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/spec"
)

func TestReadRowsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		read           func(string) error
	}{
		{"empty", "", "stdin: no Spec JSON", readSpec},
		{"malformed", `{"version" 1}`, "Spec JSON is malformed", readSpec},
		{"trailing", `{"version":"` + spec.Version + `","services":[]} {}`, "trailing data after the Spec", readSpec},
		{"unknown field", `{"version":"` + spec.Version + `","nope":1}`, `unknown field "nope"`, readSpec},
		{"spec version", `{"version":"0"}`, `Spec version "0"`, readSpec},
		{"spec name", `{"version":"` + spec.Version + `","services":[{"name":"../x"}]}`, `Spec service name "../x" is invalid`, readSpec},
		{"cuttings version", `{"version":"0"}`, `Cuttings version "0"`, readCuttings},
		{"cuttings name", `{"version":"` + contract.Version + `","cuttings":[{"service":{"name":"A"}}]}`, `Cuttings service name "A" is invalid`, readCuttings},
		{"beds version", `{"version":"0"}`, `Beds version "0"`, readBeds},
	} {
		if err := tc.read(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error with %q, got %v", tc.name, tc.want, err)
		}
	}
	if err := CheckNamespace("Cuttings", "Bad_NS"); err == nil || !strings.Contains(err.Error(), `namespace "Bad_NS" is invalid`) {
		t.Errorf("CheckNamespace(Bad_NS) = %v", err)
	}
	s, err := ReadSpec(strings.NewReader(`{"version":"` + spec.Version + `","services":[{"name":"web"}]}`))
	if err != nil || len(s.Services) != 1 || s.Services[0].Name != "web" {
		t.Errorf("ReadSpec of a valid row: %+v, %v", s, err)
	}
}

func readSpec(s string) error     { _, err := ReadSpec(strings.NewReader(s)); return err }
func readCuttings(s string) error { _, err := ReadCuttings(strings.NewReader(s)); return err }
func readBeds(s string) error     { _, err := ReadBeds(strings.NewReader(s)); return err }

func TestParseSignalAndLines(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"KILL": syscall.SIGKILL, "sighup": syscall.SIGHUP, "term": syscall.SIGTERM, "10": syscall.Signal(10)} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"NOPE", "0", "99", ""} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) accepted", bad)
		}
	}
	for in, want := range map[string]int{"all": -1, "0": 0, "12": 12} {
		if got, err := ParseLines(in); err != nil || got != want {
			t.Errorf("ParseLines(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "x", ""} {
		if _, err := ParseLines(bad); err == nil || !strings.Contains(err.Error(), "want a number of lines >= 0") {
			t.Errorf("ParseLines(%q) = %v", bad, err)
		}
	}
}

func TestWriteSurvey(t *testing.T) {
	one := 1
	var b bytes.Buffer
	WriteSurvey(&b, []platform.ServiceStatus{
		{Name: "web", State: "running", Pid: 42, Health: "healthy"},
		{Name: "job", State: "failed", ExitCode: &one},
		{Name: "db", State: "stopped", Message: "felled"},
	})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"SERVICE", "STATE", "HEALTH", "PID", "RESTARTS", "UPTIME", "EXIT", "REASON"},
		{"web", "running", "healthy", "42", "0", "-", "-"},
		{"job", "failed", "-", "-", "0", "-", "1", "see: orchd logs job"},
		{"db", "stopped", "-", "-", "0", "-", "-", "felled"},
	}
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got:\n%s", len(want), b.String())
	}
	for i, w := range want {
		if got := strings.Join(strings.Fields(lines[i]), " "); got != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want fields %q", i, lines[i], w)
		}
	}
	if strings.Contains(b.String(), "CONTAINER") {
		t.Errorf("no row has a container, yet the table has CONTAINER:\n%s", b.String())
	}
}
