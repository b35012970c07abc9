package badinput

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/spec"
)

// leaf is a command that reads a spec file a supervisor or tend wrote.
type leaf struct {
	name string
	flag string
	// valid renders a spec the leaf would accept, rooted in the sandbox.
	valid func(s *sandbox) []byte
}

var leaves = []leaf{
	{"containerd-run", "--spec-file", func(s *sandbox) []byte {
		rs := containerd.RunSpec{
			Version: containerd.RunSpecVersion, Namespace: s.Namespace, ContainerID: containerd.ContainerID(s.Namespace, "web"),
			// A socket nobody serves: if the leaf wrongly accepted the file it still cannot start anything.
			Socket:     filepath.Join(s.Root, "no-daemon.sock"),
			Service:    spec.Service{Name: "web", Mode: spec.ModeContainer, Image: "docker.io/library/busybox:latest", Env: map[string]string{"SECRET": "hunter2"}},
			ProjectDir: s.Project, DataDir: filepath.Join(s.State, "data"), StateDir: s.State, Label: contract.Label(s.Namespace, "web"),
		}
		b, err := rs.Encode()
		Expect(err).NotTo(HaveOccurred())
		return b
	}},
	{"supervise", "--spec", func(s *sandbox) []byte {
		u := contract.Unit{
			Version: contract.Version, Label: contract.Label(s.Namespace, "web"), Service: "web", Namespace: s.Namespace,
			Runtime: "bare", StateDir: s.State,
			Exec:    contract.Exec{Start: []string{"/bin/sh", "-c", "exit 0"}},
			Process: contract.Process{Env: map[string]string{"SECRET": "hunter2"}},
			Oneshot: true, Restart: spec.Restart{Policy: "no"},
		}
		return mustJSON(u)
	}},
}

var _ = Describe("a bad spec file for a leaf", Label("leaves", "hardening"), func() {
	var entries []TableEntry
	for _, l := range leaves {
		entries = append(entries,
			Entry(l.name+": missing file", l, func(s *sandbox, l leaf) (string, []string) {
				p := filepath.Join(s.Root, "missing.json")
				return p, []string{p, "no such file"}
			}),
			Entry(l.name+": a directory", l, func(s *sandbox, l leaf) (string, []string) {
				p := filepath.Join(s.Root, "dir.json")
				Expect(os.Mkdir(p, 0o700)).To(Succeed())
				return p, []string{p}
			}),
			Entry(l.name+": mode 0644 (may hold secrets, readable by others)", l, func(s *sandbox, l leaf) (string, []string) {
				p := filepath.Join(s.Root, "spec.json")
				Expect(os.WriteFile(p, l.valid(s), 0o600)).To(Succeed())
				Expect(os.Chmod(p, 0o644)).To(Succeed())
				return p, []string{p, "0600"}
			}),
			Entry(l.name+": mode 0660 (group-readable)", l, func(s *sandbox, l leaf) (string, []string) {
				p := filepath.Join(s.Root, "spec.json")
				Expect(os.WriteFile(p, l.valid(s), 0o600)).To(Succeed())
				Expect(os.Chmod(p, 0o660)).To(Succeed())
				return p, []string{p, "0600"}
			}),
			Entry(l.name+": malformed JSON", l, func(s *sandbox, l leaf) (string, []string) {
				p := filepath.Join(s.Root, "spec.json")
				Expect(os.WriteFile(p, []byte(`{"version": "1", `), 0o600)).To(Succeed())
				return p, []string{p, "JSON"}
			}),
			Entry(l.name+": binary junk", l, func(s *sandbox, l leaf) (string, []string) {
				p := filepath.Join(s.Root, "spec.json")
				Expect(os.WriteFile(p, junk(""), 0o600)).To(Succeed())
				return p, []string{p}
			}),
			Entry(l.name+": wrong version", l, func(s *sandbox, l leaf) (string, []string) {
				p := filepath.Join(s.Root, "spec.json")
				Expect(os.WriteFile(p, []byte(`{"version": "99"}`), 0o600)).To(Succeed())
				return p, []string{p, "version"}
			}),
			Entry(l.name+": no spec given", l, func(s *sandbox, l leaf) (string, []string) {
				return "", []string{l.flag}
			}),
		)
	}
	DescribeTable("is refused naming the file and the fix; nothing runs",
		func(ctx SpecContext, l leaf, setup func(s *sandbox, l leaf) (string, []string)) {
			s := newSandbox()
			file, wants := setup(s, l)
			args := []string{l.name}
			if file != "" {
				args = append(args, l.flag, file)
			}
			r := s.orchd(ctx, nil, s.env("ORCHD_CONTAINERD_SOCKET="+filepath.Join(s.Root, "no-daemon.sock")), args...)
			expectRefused(r, wants...)
			Expect(r.Stderr).NotTo(ContainSubstring("hunter2"), "a refused spec's secret was echoed")
			s.expectNothingCreated(ctx)
		}, entries)
})
