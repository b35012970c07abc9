package badinput

import (
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("hostile namespace and service names on the command line", Label("names", "hardening"), func() {
	DescribeTable("a namespace that is not a DNS label is refused by every walk, naming it and the rule",
		func(ctx SpecContext, ns string) {
			s := newSandbox()
			canary := filepath.Join(s.Root, "pwned")
			ns = strings.ReplaceAll(ns, "CANARY", canary)
			s.write("Orchfile", []byte("SERVICE web\nRUN sleep 30\n"))
			base := []string{"--project-dir", s.Project, "--state-dir", s.State, "--platform", "orchdi", "--runtime", "bare"}
			for _, walk := range [][]string{{"grow"}, {"survey"}, {"fell"}, {"logs", "web"}} {
				By(strings.Join(walk, " ") + " --namespace " + ns)
				expectRefused(s.orchd(ctx, nil, nil, append(append(base, "--namespace", ns), walk...)...), ns, "DNS label")
				By(strings.Join(walk, " ") + " with ORCH_NAMESPACE")
				expectRefused(s.orchd(ctx, nil, s.env("ORCH_NAMESPACE="+ns), append(base, walk...)...), ns, "DNS label")
			}
			s.expectNothingCreated(ctx)
			Expect(canary).NotTo(BeAnExistingFile())
		},
		Entry("path traversal", "../x"),
		Entry("slash", "a/b"),
		Entry("shell injection $(...)", "$(touch CANARY)"),
		Entry("shell injection ;", "a;touch CANARY"),
		Entry("uppercase", "Orch"),
		Entry("64 characters", strings.Repeat("n", 64)),
		Entry("dot (labels are <ns>.<svc>)", "a.b"),
	)

	DescribeTable("a service argument that is not a service is refused without touching the path it names",
		func(ctx SpecContext, walk, name string) {
			s := newSandbox()
			s.write("Orchfile", []byte("SERVICE web\nRUN sleep 30\n"))
			r := s.orchd(ctx, nil, nil, s.globals("--runtime", "bare", walk, name)...)
			expectRefused(r, name, "unknown service")
			Expect(r.Stdout).NotTo(ContainSubstring("root:"), "logs printed a file outside the state dir")
			s.expectNothingCreated(ctx)
		},
		Entry("grow ../web", "grow", "../web"),
		Entry("grow $(id)", "grow", "$(id)"),
		Entry("logs ../../../../etc/passwd", "logs", "../../../../etc/passwd"),
		Entry("logs /etc/passwd", "logs", "/etc/passwd"),
	)
})
