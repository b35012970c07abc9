package orchdi_test

import (
	"encoding/json"
	"testing"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform/orchdi"
	"github.com/orchd/orchd/orchd/spec"
)

func TestPlantUnits(t *testing.T) {
	env := contract.Env{ProjectDir: "/proj", StateDir: "/state", Namespace: "ns"}
	c := contract.Cuttings{Version: contract.Version, Runtime: "bare", Env: env, Cuttings: []contract.Cutting{
		{Service: spec.Service{Name: "mig", Oneshot: true, ReadinessTimeout: "5s"}, Exec: contract.Exec{Start: []string{"true"}}},
		{Service: spec.Service{Name: "web", Requires: []string{"mig"}, After: []string{"img"},
			Logging: spec.Logging{Stdout: "logs/${SERVICE_NAME}.out"}, Timeouts: spec.Timeouts{Stop: "3s"}},
			Exec: contract.Exec{Start: []string{"serve"}}, Files: []contract.File{{Path: "/state/run/x", Content: "c", Mode: 0o640}}},
		{Service: spec.Service{Name: "img", Disabled: true}, Skip: "needs a container runtime"},
	}}
	beds, err := orchdi.New().Plant(c, "user")
	if err != nil {
		t.Fatal(err)
	}
	if beds.Platform != "orchdi" || beds.Namespace != "ns" || beds.StateDir != "/state" || len(beds.Beds) != 3 {
		t.Fatalf("beds: %+v", beds)
	}
	web := beds.Beds[1]
	if web.Label != "ns.web" || len(web.Artifacts) != 2 || web.Artifacts[0].Kind != contract.KindUnit ||
		web.Artifacts[0].Mode != 0o600 || web.Artifacts[0].Path != "/state/run/ns.web.unit.json" {
		t.Fatalf("web bed: %+v", web)
	}
	if f := web.Artifacts[1]; f.Kind != contract.KindFile || f.Path != "/state/run/x" || f.Mode != 0o640 {
		t.Errorf("runtime file artifact: %+v", f)
	}
	var u contract.Unit
	if err := json.Unmarshal([]byte(web.Artifacts[0].Content), &u); err != nil {
		t.Fatal(err)
	}
	if len(u.Requires) != 1 || u.Requires[0] != (contract.Dependency{Service: "mig", Label: "ns.mig", Oneshot: true, ReadinessTimeout: "5s"}) {
		t.Errorf("requires: %+v", u.Requires)
	}
	if len(u.After) != 1 || u.After[0].Label != "ns.img" || u.After[0].ReadinessTimeout != spec.DefaultReadinessTimeout {
		t.Errorf("after: %+v", u.After)
	}
	if u.Stdout != "/proj/logs/web.out" || u.Stderr != "/state/logs/ns.web.log" {
		t.Errorf("stdout %q stderr %q", u.Stdout, u.Stderr)
	}
	if u.StateDir != "/state" || u.Timeouts.Stop != "3s" || u.Exec.Start[0] != "serve" {
		t.Errorf("unit: %+v", u)
	}
	img := beds.Beds[2]
	if img.Skip == "" || !img.Disabled || len(img.Artifacts) != 0 {
		t.Errorf("skipped bed: %+v", img)
	}
	if _, err := orchdi.New().Plant(contract.Cuttings{Env: contract.Env{StateDir: "rel", Namespace: "ns"}}, "user"); err == nil {
		t.Errorf("a relative state dir should be refused")
	}
}
