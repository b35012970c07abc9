package platform

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/orchd/orchd/orchd/contract"
)

func TestWriteArtifacts(t *testing.T) {
	dir := t.TempDir()
	unit := func(svc, content string) contract.Bed {
		return contract.Bed{Service: svc, Artifacts: []contract.Artifact{
			{Kind: "unit", Path: filepath.Join(dir, "units", svc+".service"), Content: content},
			{Kind: "env", Path: filepath.Join(dir, svc+".env"), Content: "K=v\n", Mode: 0o640},
		}}
	}
	beds := contract.Beds{Beds: []contract.Bed{unit("web", "A"), unit("db", "B")}}
	changed, paths, err := WriteArtifacts(beds, "unit")
	if err != nil {
		t.Fatal(err)
	}
	if !changed["web"] || !changed["db"] || paths["web"] != filepath.Join(dir, "units", "web.service") {
		t.Fatalf("first write: changed %v, paths %v", changed, paths)
	}
	for path, mode := range map[string]os.FileMode{paths["web"]: 0o600, filepath.Join(dir, "web.env"): 0o640} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", path, err, fi.Mode().Perm(), mode)
		}
	}
	beds.Beds[1] = unit("db", "B2")
	if changed, _, err = WriteArtifacts(beds, "unit"); err != nil || changed["web"] || !changed["db"] {
		t.Fatalf("rewrite with db's unit edited: changed %v, %v", changed, err)
	}
}
