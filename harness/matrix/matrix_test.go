package matrix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

// writeCell writes one suite's env.json and Ginkgo report for a stack.
func writeCell(t *testing.T, dir, suite string, st Stack, states ...types.SpecState) {
	t.Helper()
	base := filepath.Join(dir, suite+"-"+strings.ReplaceAll(st.Key(), " ", "-"))
	env, _ := json.Marshal(envFile{Suite: suite, Stack: st})
	if err := os.WriteFile(base+EnvSuffix, env, 0o644); err != nil {
		t.Fatal(err)
	}
	var specs types.SpecReports
	for i, s := range states {
		r := types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: suite + " spec " + string(rune('a'+i)), State: s}
		if i == 0 {
			r.ReportEntries = types.ReportEntries{{Name: DeviationEntry + "proc-limits"}}
		}
		specs = append(specs, r)
	}
	b, _ := json.Marshal([]types.Report{{SpecReports: specs}})
	if err := os.WriteFile(base+".json", b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadBuildsSuiteByStack(t *testing.T) {
	dir := t.TempDir()
	host := Stack{Where: "host", CgroupMode: "v1", Toolchain: "v2.2.1", Containerd: "2.2.1", OCIRuntime: "runsc"}
	vm := Stack{Where: "vm", CgroupMode: "v2", Toolchain: "system", Containerd: "1.6.20", OCIRuntime: "crun"}
	writeCell(t, dir, "fanout", host, types.SpecStatePassed, types.SpecStatePassed, types.SpecStateSkipped)
	// The VM's reports may sit in a dir of their own (CI's inception-vm).
	vmDir := filepath.Join(dir, "inception-vm")
	if err := os.Mkdir(vmDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCell(t, vmDir, "fanout", vm, types.SpecStatePassed)
	writeCell(t, dir, "oneshot", host, types.SpecStatePassed, types.SpecStateFailed)
	m, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Cells) != 3 || len(m.Stacks()) != 2 || m.OK {
		t.Fatalf("cells %d stacks %d ok %v", len(m.Cells), len(m.Stacks()), m.OK)
	}
	var md strings.Builder
	if err := m.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{
		"| suite | host v1 v2.2.1 runsc<br>containerd 2.2.1 | vm v2 system crun<br>containerd 1.6.20 |",
		"| fanout | PASS 2/3, 1 skipped, deviations: proc-limits | PASS 1/1, deviations: proc-limits |",
		"| oneshot | FAIL 1/2, 1 failed, deviations: proc-limits | - |",
		"result: FAIL (3 cells)",
		"- FAILED oneshot on host v1 v2.2.1 runsc: oneshot spec b",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	var back Matrix
	b, _ := os.ReadFile(filepath.Join(dir, "matrix.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Cells) != 3 || back.Cells[0].Passed != 2 {
		t.Fatalf("matrix.json: %v %+v", err, back)
	}
}

func TestReadNeedsReports(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "ORCHD_REPORT_DIR") {
		t.Fatalf("an empty dir must say how to get reports, got %v", err)
	}
	// An env file without its Ginkgo report is a failed cell, not a pass.
	env, _ := json.Marshal(envFile{Suite: "leak", Stack: Stack{Where: "host"}})
	if err := os.WriteFile(filepath.Join(dir, "leak-host"+EnvSuffix), env, 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Read(dir)
	if err != nil || m.OK || !strings.Contains(m.Cells[0].Error, "no Ginkgo report") {
		t.Fatalf("want a failed cell naming the missing report: %v %+v", err, m)
	}
}
