package orchard

import (
	"strings"
	"testing"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

func parse(t *testing.T, orchfile string) *spec.Spec {
	t.Helper()
	s, err := spec.Parse([]spec.Source{{Name: "Orchfile", Data: []byte(orchfile)}},
		spec.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSowExpandsBuiltinsAndSkipsFromUnderBare(t *testing.T) {
	s := parse(t, "SERVICE app\nRUN echo ${ORCH_DATA}\nSTDOUT ${ORCH_STATE_DIR}/${SERVICE_NAME}.out\n\nSERVICE db\nFROM postgres:16\n")
	env := contract.Env{ProjectDir: "/p", StateDir: "/s", DataDir: "/s/data", Namespace: "orch", Orchd: "/bin/orchd"}
	rt, err := Runtime("bare")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Sow(s, rt, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != contract.Version || c.Runtime != "bare" || len(c.Cuttings) != 2 {
		t.Fatalf("cuttings = %+v", c)
	}
	if got := strings.Join(c.Cuttings[0].Exec.Start, " "); got != "/bin/sh -c echo /s/data" {
		t.Errorf("start = %q, want the data dir filled in", got)
	}
	if got := c.Cuttings[0].Service.Logging.Stdout; got != "/s/app.out" {
		t.Errorf("stdout = %q", got)
	}
	if c.Cuttings[1].Skip == "" || !strings.Contains(c.Cuttings[1].Skip, "RUN") {
		t.Errorf("FROM under bare: skip = %q, want a reason that suggests RUN", c.Cuttings[1].Skip)
	}
	// Sow must not change the Spec it was given (rows are pure).
	if s.Services[0].RunCommand != "echo ${ORCH_DATA}" {
		t.Errorf("sow changed its input: %q", s.Services[0].RunCommand)
	}

	p, err := Platform("orchdi", "user")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Plant(c, p, "user")
	if err != nil {
		t.Fatal(err)
	}
	if b.Namespace != "orch" || len(b.Beds) != 2 || b.Beds[0].Label != "orch.app" {
		t.Fatalf("beds = %+v", b)
	}
	for _, a := range b.Beds[0].Artifacts {
		if a.Mode != 0o600 {
			t.Errorf("artifact %s mode %o, want 0600", a.Path, a.Mode)
		}
	}
}

func TestPlantRefusesOtherVersions(t *testing.T) {
	p, _ := Platform("orchdi", "user")
	if _, err := Plant(&contract.Cuttings{Version: "0"}, p, "user"); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("err = %v", err)
	}
}

func TestUnknownNames(t *testing.T) {
	if _, err := Runtime("docker"); err == nil {
		t.Error("runtime docker: no error")
	}
	if _, err := Platform("upstart", "user"); err == nil || !strings.Contains(err.Error(), "want orchdi, systemd or launchd") {
		t.Errorf("platform upstart: %v, want the known ones", err)
	}
	if p, err := Platform("systemd", "system"); err != nil || p.Name() != "systemd" {
		t.Errorf("platform systemd: %v", err)
	}
	err := unknownService("wbe", []string{"web", "db"})
	if !strings.Contains(err.Error(), "db, web") {
		t.Errorf("unknown service error %q should list the known ones", err)
	}
}
