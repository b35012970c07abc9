package spec

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func TestGolden(t *testing.T) {
	cases := []struct {
		name  string
		files []string
		args  map[string]string
	}{
		{"minimal", []string{"testdata/golden/minimal.orch"}, nil},
		{"reference", []string{"testdata/golden/reference.orch"}, nil}, // the example in ORCHFILE.md
		{"full", []string{"testdata/golden/full.orch"}, nil},
		{"full-args", []string{"testdata/golden/full.orch"}, map[string]string{"web_port": "9999", "registry": "ghcr.io/acme"}},
		{"modes-overlay", []string{"testdata/golden/modes.orch", "testdata/golden/modes-overlay.orch"}, nil},
		{"realistic", []string{"../../examples/realistic/Orchfile"}, nil},
		{"realistic-overlay", []string{"../../examples/realistic/Orchfile", "../../examples/realistic/overlay.orch"}, nil},
		{"hello", []string{"../../examples/hello/Orchfile"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseFiles(tc.files, Options{Args: tc.args, LookupEnv: noEnv})
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", tc.name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./orchd/spec -run TestGolden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the parse; run with -update after checking the change\ngot:\n%s", path, got)
			}
			// The JSON round-trips into the same Spec.
			var back Spec
			if err := json.Unmarshal(want, &back); err != nil {
				t.Fatal(err)
			}
			again, _ := json.MarshalIndent(&back, "", "  ")
			if !bytes.Equal(append(again, '\n'), want) {
				t.Errorf("%s does not round-trip", path)
			}
		})
	}
}
