package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary base and overlay files to Parse. It must never
// panic; a success must produce a self-consistent Spec, a failure an ErrorList
// whose entries are located in the given files and sorted.
func FuzzParse(f *testing.F) {
	for _, p := range []string{
		"testdata/golden/full.orch", "testdata/golden/modes.orch", "testdata/golden/minimal.orch", "testdata/golden/reference.orch",
		"../../examples/realistic/Orchfile", "../../examples/hello/Orchfile",
	} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, []byte(""))
	}
	over, err := os.ReadFile(filepath.Join("..", "..", "examples", "realistic", "overlay.orch"))
	if err != nil {
		f.Fatal(err)
	}
	base, _ := os.ReadFile(filepath.Join("..", "..", "examples", "realistic", "Orchfile"))
	f.Add(base, over)
	modes, _ := os.ReadFile("testdata/golden/modes.orch")
	modesOver, _ := os.ReadFile("testdata/golden/modes-overlay.orch")
	f.Add(modes, modesOver)
	for _, s := range []string{
		"SERVICE a\nRUN x\nREQUIRES b\nSERVICE b\nRUN y\nAFTER a\n",
		"ARG a=${b}\nARG b=${a}\nSERVICE s\nRUN ${a}\n",
		"SERVICE a\nFROM x\nPUBLISH [::1]:1:2\nVOLUME v:/v\nCLEAR ENV\n",
		"ORCH_VERSION 0.2.1\nSERVICE a\n\tRUN x\x00\nenv A=\xff\n",
		"SERVICE ${ORCH_DATA}\nRUN ${\n",
	} {
		f.Add([]byte(s), []byte("SERVICE a\nCLEAR PUBLISH VOLUME\nRUN z\n"))
	}
	f.Fuzz(func(t *testing.T, base, overlay []byte) {
		sources := []Source{{Name: "base", Data: base}, {Name: "overlay", Data: overlay}}
		s, err := Parse(sources, Options{Args: map[string]string{"fz": "1"}, LookupEnv: noEnv})
		if err != nil {
			if s != nil {
				t.Fatal("Spec returned together with an error")
			}
			var list *ErrorList
			if !errors.As(err, &list) || len(*list) == 0 {
				t.Fatalf("error is not a non-empty *ErrorList: %T %v", err, err)
			}
			lastFile, lastLine := -1, 0
			for _, e := range *list {
				fi := map[string]int{"base": 0, "overlay": 1}[e.File]
				if e.File != "base" && e.File != "overlay" || e.Line < 1 {
					t.Fatalf("error not located in a file: %q", e.Error())
				}
				if fi < lastFile || fi == lastFile && e.Line < lastLine {
					t.Fatalf("errors not sorted: %v", err)
				}
				lastFile, lastLine = fi, e.Line
				if strings.TrimSpace(e.Msg) == "" {
					t.Fatalf("empty message at %s:%d", e.File, e.Line)
				}
			}
			return
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, svc := range s.Services {
			if !ValidServiceName(svc.Name) || names[svc.Name] {
				t.Fatalf("bad or duplicate service name %q", svc.Name)
			}
			names[svc.Name] = true
			if (svc.Image == "") == (svc.RunCommand == "") {
				t.Fatalf("service %s: not exactly one of image/run_command", svc.Name)
			}
			for _, r := range svc.Requires {
				if !names[r] && !contains(serviceNames(s), r) {
					t.Fatalf("service %s requires undefined %s", svc.Name, r)
				}
			}
		}
		if _, err := TopoOrder(s.Services); err != nil {
			t.Fatalf("parse accepted a cycle: %v", err)
		}
	})
}

func serviceNames(s *Spec) []string {
	out := make([]string, len(s.Services))
	for i, v := range s.Services {
		out[i] = v.Name
	}
	return out
}
