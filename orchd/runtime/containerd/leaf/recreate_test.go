package leaf

import (
	"os"
	"path/filepath"
	"testing"

	crd "github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/spec"
)

func TestSpecHashFollowsTheDefinition(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := &crd.RunSpec{Version: crd.RunSpecVersion, Namespace: "n", ContainerID: "n-a", Label: "n.a",
		Service: spec.Service{Name: "a", Image: "img", Env: map[string]string{"K": "v"}}, EnvFiles: []string{envFile}}
	h1, err := specHash(rs)
	if err != nil {
		t.Fatal(err)
	}
	if h2, _ := specHash(rs); h2 != h1 {
		t.Fatalf("hash not stable: %s %s", h1, h2)
	}
	if err := os.WriteFile(envFile, []byte("A=2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h3, _ := specHash(rs)
	if h3 == h1 {
		t.Error("an edited ENV_FILE must give a fresh container")
	}
	rs.Service.Env["K"] = "w"
	if h4, _ := specHash(rs); h4 == h3 {
		t.Error("an edited ENV must give a fresh container")
	}
	os.Remove(envFile)
	if _, err := specHash(rs); err == nil {
		t.Error("a missing ENV_FILE must be an error")
	}
}

func TestOneshotsAndRecreateAlwaysKeepNothing(t *testing.T) {
	for _, c := range []struct {
		recreate string
		oneshot  bool
		keep     bool
	}{{"never", false, true}, {"", false, true}, {"always", false, false}, {"never", true, false}} {
		l := &leaf{rs: &crd.RunSpec{Service: spec.Service{Recreate: c.recreate, Oneshot: c.oneshot}}}
		if l.keeps() != c.keep {
			t.Errorf("RECREATE %q oneshot %v: keeps %v, want %v", c.recreate, c.oneshot, l.keeps(), c.keep)
		}
	}
}
