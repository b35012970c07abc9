package badinput

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// rowDoc names the JSON document each row reads, as its errors name it.
var rowDoc = map[string]string{"sow": "Spec", "plant": "Cuttings", "tend": "Beds"}

var _ = Describe("malformed JSON on a row's stdin", Label("rows"), func() {
	entries := []TableEntry{}
	inputs := []struct {
		name  string
		input string
		wants []string
	}{
		{"empty stdin", "", []string{"stdin", "no DOC JSON"}},
		{"whitespace only", " \n\t\n", []string{"stdin", "no DOC JSON"}},
		{"truncated document", `{"version": "1", "services": [`, []string{"stdin", "DOC JSON"}},
		{"not JSON", "SERVICE web\nRUN x\n", []string{"stdin", "DOC JSON is malformed"}},
		{"a JSON array", `[1, 2, 3]`, []string{"stdin", "DOC JSON"}},
		{"trailing document", `{"version": "x"} {"version": "y"}`, []string{"stdin", "trailing data"}},
		{"unknown field", `{"version": "1", "bogus": true}`, []string{"stdin", "bogus"}},
		{"wrong type", `{"version": 1}`, []string{"stdin", "version"}},
		{"wrong version", `{"version": "99"}`, []string{"stdin", "version", "99"}},
		{"binary junk", string(junk("")), []string{"stdin", "DOC JSON"}},
	}
	for _, row := range []string{"sow", "plant", "tend"} {
		for _, in := range inputs {
			wants := make([]string, len(in.wants))
			for i, w := range in.wants {
				wants[i] = strings.ReplaceAll(w, "DOC", rowDoc[row])
			}
			entries = append(entries, Entry(fmt.Sprintf("%s: %s", row, in.name), row, in.input, wants))
		}
	}
	DescribeTable("is refused naming stdin and the document, creating nothing",
		func(ctx SpecContext, row, input string, wants []string) {
			s := newSandbox()
			args := s.globals("--runtime", "containerd", row)
			if row == "tend" {
				args = append(args, "--no-start")
			}
			r := s.orchd(ctx, strings.NewReader(input), nil, args...)
			expectRefused(r, wants...)
			Expect(r.Stdout).To(BeEmpty())
			s.expectNothingCreated(ctx)
		}, entries)
})

// hostService is a Spec service as `orchd parse` would print it.
func hostService(name string) map[string]any {
	return map[string]any{
		"name": name, "mode": "host", "run_command": "sleep 1",
		"oneshot": false, "disabled": false, "recreate": "never",
		"restart": map[string]any{"policy": "no"}, "timeouts": map[string]any{},
		"resources": map[string]any{}, "logging": map[string]any{},
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return b
}

var _ = Describe("well-formed rows with hostile names and paths", Label("rows", "hardening"), func() {
	// Rows can be spliced (`orchd parse | jq ... | orchd sow`), so every row
	// validates names again rather than trusting the parser upstream.
	DescribeTable("sow refuses a Spec whose service name is not a valid name",
		func(ctx SpecContext, name string) {
			s := newSandbox()
			canary := filepath.Join(s.Root, "pwned")
			name = strings.ReplaceAll(name, "CANARY", canary)
			doc := mustJSON(map[string]any{"version": "0.2.1", "services": []any{hostService(name)}})
			for _, rt := range []string{"bare", "containerd"} {
				expectRefused(s.orchd(ctx, bytes.NewReader(doc), nil, s.globals("--runtime", rt, "sow")...), name)
			}
			s.expectNothingCreated(ctx)
			Expect(canary).NotTo(BeAnExistingFile())
		},
		Entry("path traversal", "../../evil"),
		Entry("absolute path", "/etc/evil"),
		Entry("shell injection $(...)", "$(touch CANARY)"),
		Entry("shell injection ;", "x;touch CANARY"),
	)

	It("plant refuses Cuttings whose namespace or service name would escape the state dir", func(ctx SpecContext) {
		s := newSandbox()
		for _, c := range []struct{ ns, svc string }{{"../../evil", "web"}, {s.Namespace, "../../evil"}} {
			doc := mustJSON(map[string]any{
				"version": "1", "runtime": "bare",
				"env":      map[string]any{"project_dir": s.Project, "state_dir": s.State, "data_dir": filepath.Join(s.State, "data"), "namespace": c.ns, "orchd": fw.Orchd},
				"cuttings": []any{map[string]any{"service": hostService(c.svc), "exec": map[string]any{"start": []string{"/bin/sh", "-c", "sleep 1"}}, "process": map[string]any{}}},
			})
			// No --namespace flag: plant must take (and check) the namespace from the document.
			r := s.orchd(ctx, bytes.NewReader(doc), nil, "--state-dir", s.State, "--platform", "orchdi", "plant")
			expectRefused(r, "../../evil")
		}
		s.expectNothingCreated(ctx)
	})

	DescribeTable("tend refuses Beds that would write outside the state dir",
		func(ctx SpecContext, label func(s *sandbox) string, path func(s *sandbox) string) {
			s := newSandbox()
			outside := filepath.Join(s.Root, "outside")
			Expect(os.Mkdir(outside, 0o700)).To(Succeed())
			doc := mustJSON(map[string]any{
				"version": "1", "platform": "orchdi", "namespace": s.Namespace, "scope": "user", "state_dir": s.State,
				"beds": []any{map[string]any{
					"label": label(s), "service": "web",
					"artifacts": []any{map[string]any{"kind": "file", "path": path(s), "content": "owned\n", "mode": 0o600}},
				}},
			})
			r := s.orchd(ctx, bytes.NewReader(doc), nil, s.globals("tend", "--no-start")...)
			expectRefused(r)
			Expect(r.Stderr).To(Or(ContainSubstring("outside"), ContainSubstring("label"), ContainSubstring("..")), "the error must say what is wrong:\n%s", r)
			entries, err := os.ReadDir(outside)
			Expect(err).NotTo(HaveOccurred())
			Expect(entries).To(BeEmpty(), "tend wrote outside the state dir")
			s.expectNothingCreated(ctx)
		},
		Entry("artifact path through ..", func(s *sandbox) string { return s.Namespace + ".web" },
			func(s *sandbox) string { return filepath.Join(s.State, "run") + "/../../outside/evil" }),
		Entry("absolute artifact path elsewhere", func(s *sandbox) string { return s.Namespace + ".web" },
			func(s *sandbox) string { return filepath.Join(s.Root, "outside", "evil") }),
		Entry("label with ..", func(s *sandbox) string { return "../../outside/evil" },
			func(s *sandbox) string { return filepath.Join(s.State, "run", "web.unit.json") }),
		Entry("label of another namespace", func(s *sandbox) string { return "other.web" },
			func(s *sandbox) string { return filepath.Join(s.State, "run", "other.web.unit.json") }),
	)
})
