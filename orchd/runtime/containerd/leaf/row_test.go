package leaf

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform/orchdi"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/spec"
)

// An edit of a Cuttings row (sow | jq | plant) reaches the leaf: the run spec
// file is rendered from the row's service, not carried beside it.
func TestRowEditReachesLeaf(t *testing.T) {
	jq, err := exec.LookPath("jq")
	if err != nil {
		t.Fatalf("jq not found: install it with `apt-get install -y jq`: %v", err)
	}
	state := t.TempDir()
	env := contract.Env{ProjectDir: t.TempDir(), StateDir: state, DataDir: filepath.Join(state, "data"), Namespace: "ns", Orchd: "/usr/bin/orchd"}
	svc := spec.Service{Name: "web", Mode: spec.ModeContainer, Image: "oci-layout:///x", Timeouts: spec.Timeouts{Stop: "10s"}}
	cut, err := crd.New().Cut(svc, env)
	if err != nil {
		t.Fatal(err)
	}
	row, err := json.Marshal(contract.Cuttings{Version: contract.Version, Runtime: "containerd", Env: env, Cuttings: []contract.Cutting{cut}})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(jq, `.cuttings[0].service.timeouts.stop = "30s"`)
	cmd.Stdin = strings.NewReader(string(row))
	edited, err := cmd.Output()
	if err != nil {
		t.Fatalf("jq: %v", err)
	}
	var c contract.Cuttings
	if err := json.Unmarshal(edited, &c); err != nil {
		t.Fatal(err)
	}
	beds, err := orchdi.New().Plant(c, "user")
	if err != nil {
		t.Fatal(err)
	}
	file := contract.Layout{StateDir: state}.CrunFile(contract.Label("ns", "web"))
	var found bool
	for _, a := range beds.Beds[0].Artifacts {
		if a.Path != file {
			continue
		}
		found = true
		if err := os.MkdirAll(filepath.Dir(a.Path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(a.Path, []byte(a.Content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatalf("no artifact for the leaf's run spec %s in %+v", file, beds.Beds[0].Artifacts)
	}
	rs, err := crd.LoadRunSpec(file, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stopGraceFor(rs), stopGrace(30*time.Second); got != want {
		t.Errorf("leaf stop grace = %s, want %s (from the edited row's TIMEOUT_STOP 30s; unedited it would be %s)", got, want, stopGrace(10*time.Second))
	}
}
