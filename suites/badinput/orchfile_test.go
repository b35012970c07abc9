package badinput

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// orchfileCase is one malformed Orchfile: its text (canary = a path that must
// never be created) and what the error must say.
type orchfileCase struct {
	text  func(canary string) []byte
	wants []string // substrings of stderr; "Orchfile:N" names file and line
}

func text(s string) func(string) []byte {
	return func(string) []byte { return []byte(s) }
}

func withCanary(s string) func(string) []byte {
	return func(canary string) []byte { return []byte(strings.ReplaceAll(s, "CANARY", canary)) }
}

var _ = Describe("a malformed Orchfile", Label("parser"), func() {
	DescribeTable("is refused by parse, validate and grow, naming file, line and fix, creating nothing",
		func(ctx SpecContext, c orchfileCase) {
			s := newSandbox()
			canary := filepath.Join(s.Root, "pwned")
			file := s.write("Orchfile", c.text(canary))

			for _, args := range [][]string{
				{"parse", file},
				{"validate", file},
				s.globals("--runtime", "bare", "grow"),
				s.globals("--runtime", "containerd", "grow"),
			} {
				By("orchd " + strings.Join(args, " "))
				r := s.orchd(ctx, nil, nil, args...)
				expectRefused(r, c.wants...)
				Expect(r.Stdout).To(BeEmpty(), "a refused parse prints no Spec")
			}
			s.expectNothingCreated(ctx)
			Expect(canary).NotTo(BeAnExistingFile(), "a name was executed by a shell")
		},
		// C1: exactly one of FROM / RUN.
		Entry("C1: both FROM and RUN", orchfileCase{text("SERVICE web\nRUN sleep 1\nFROM alpine\n"), []string{"Orchfile:3", "both FROM", "RUN"}}),
		Entry("C1: neither FROM nor RUN", orchfileCase{text("SERVICE web\nENV A=b\n"), []string{"Orchfile:1", "neither FROM nor RUN"}}),
		// C2: container-only directives with RUN.
		Entry("C2: ENTRYPOINT with RUN", orchfileCase{text("SERVICE web\nRUN x\nENTRYPOINT /bin/sh\n"), []string{"Orchfile:3", "ENTRYPOINT", "FROM"}}),
		Entry("C2: CMD with RUN", orchfileCase{text("SERVICE web\nRUN x\nCMD y\n"), []string{"Orchfile:3", "CMD", "FROM"}}),
		Entry("C2: PUBLISH with RUN", orchfileCase{text("SERVICE web\nRUN x\nPUBLISH 8080:80\n"), []string{"Orchfile:3", "PUBLISH", "FROM"}}),
		Entry("C2: VOLUME with RUN", orchfileCase{text("SERVICE web\nRUN x\nVOLUME data:/data\n"), []string{"Orchfile:3", "VOLUME", "FROM"}}),
		// C3: host-only directives with FROM.
		Entry("C3: USER with FROM", orchfileCase{text("SERVICE web\nFROM alpine\nUSER nobody\n"), []string{"Orchfile:3", "USER", "RUN"}}),
		Entry("C3: STOP with FROM", orchfileCase{text("SERVICE web\nFROM alpine\nSTOP kill 1\n"), []string{"Orchfile:3", "STOP", "RUN"}}),
		Entry("C3: RELOAD with FROM", orchfileCase{text("SERVICE web\nFROM alpine\nRELOAD kill -HUP 1\n"), []string{"Orchfile:3", "RELOAD", "RUN"}}),
		// C4: the dependency graph is a DAG.
		Entry("C4: REQUIRES/AFTER cycle", orchfileCase{text("SERVICE a\nRUN x\nREQUIRES b\nSERVICE b\nRUN y\nAFTER a\n"), []string{"Orchfile:", "cycle", "a -> b -> a"}}),
		Entry("C4: self dependency", orchfileCase{text("SERVICE web\nRUN x\nREQUIRES web\n"), []string{"Orchfile:3", "cycle", "web"}}),
		Entry("C4: three-service cycle", orchfileCase{text("SERVICE a\nRUN x\nAFTER c\nSERVICE b\nRUN x\nREQUIRES a\nSERVICE c\nRUN x\nREQUIRES b\n"), []string{"Orchfile:", "cycle"}}),
		Entry("REQUIRES an undefined service", orchfileCase{text("SERVICE web\nRUN x\nREQUIRES ghost\n"), []string{"Orchfile:3", "ghost"}}),
		// Structure.
		Entry("unknown directive", orchfileCase{text("SERVICE web\nRUN x\nFROBNICATE yes\n"), []string{"Orchfile:3", "FROBNICATE"}}),
		Entry("lowercase directive", orchfileCase{text("SERVICE web\nrun x\n"), []string{"Orchfile:2", "UPPERCASE"}}),
		Entry("directive outside a SERVICE block", orchfileCase{text("RUN x\nSERVICE web\nRUN y\n"), []string{"Orchfile:1", "SERVICE"}}),
		Entry("duplicate directive", orchfileCase{text("SERVICE web\nRUN x\nRUN y\n"), []string{"Orchfile:3", "duplicate RUN"}}),
		Entry("duplicate SERVICE", orchfileCase{text("SERVICE web\nRUN x\nSERVICE web\nRUN y\n"), []string{"Orchfile:3", "duplicate SERVICE web"}}),
		Entry("SERVICE without a name", orchfileCase{text("SERVICE\nRUN x\n"), []string{"Orchfile:1", "SERVICE"}}),
		Entry("directive without a value", orchfileCase{text("SERVICE web\nRUN\n"), []string{"Orchfile:2", "RUN"}}),
		Entry("ORCH_VERSION after SERVICE", orchfileCase{text("SERVICE web\nRUN x\nORCH_VERSION 0.2.1\n"), []string{"Orchfile:3", "ORCH_VERSION", "first"}}),
		Entry("unsupported ORCH_VERSION", orchfileCase{text("ORCH_VERSION 9.9\nSERVICE web\nRUN x\n"), []string{"Orchfile:1", "9.9", "0.2.1"}}),
		Entry("CLEAR of a scalar", orchfileCase{text("SERVICE web\nRUN x\nCLEAR FROM\n"), []string{"Orchfile:3", "CLEAR", "FROM"}}),
		Entry("undefined variable", orchfileCase{text("SERVICE web\nRUN ${nope}\n"), []string{"Orchfile:2", "nope", "ARG"}}),
		// Names: syntax, path traversal and shell injection.
		Entry("service name in uppercase", orchfileCase{text("SERVICE Web\nRUN x\n"), []string{"Orchfile:1", `"Web"`}}),
		Entry("service name starting with a digit", orchfileCase{text("SERVICE 1web\nRUN x\n"), []string{"Orchfile:1", `"1web"`}}),
		Entry("service name of 64 characters", orchfileCase{text("SERVICE " + strings.Repeat("a", 64) + "\nRUN x\n"), []string{"Orchfile:1", "63"}}),
		Entry("service name with ../ (path traversal)", orchfileCase{text("SERVICE ../../etc/passwd\nRUN x\n"), []string{"Orchfile:1", "../../etc/passwd", "lowercase letter"}}),
		Entry("service name with $(...) (shell injection)", orchfileCase{withCanary("SERVICE $(touch CANARY)\nRUN x\n"), []string{"Orchfile:1", "invalid service name"}}),
		Entry("service name with ; (shell injection)", orchfileCase{withCanary("SERVICE a;touch CANARY\nRUN x\n"), []string{"Orchfile:1", "invalid service name"}}),
		Entry("REQUIRES with ../ (path traversal)", orchfileCase{text("SERVICE web\nRUN x\nREQUIRES ../web\n"), []string{"Orchfile:3", "../web"}}),
		Entry("ARG name invalid", orchfileCase{text("ARG 1x=2\nSERVICE web\nRUN x\n"), []string{"Orchfile:1", "ARG", "1x"}}),
		Entry("ENV key invalid", orchfileCase{text("SERVICE web\nRUN x\nENV 1A=b\n"), []string{"Orchfile:3", "ENV", "1A"}}),
		// Values of every kind.
		Entry("duration without a unit", orchfileCase{text("SERVICE web\nRUN x\nTIMEOUT_STOP 10\n"), []string{"Orchfile:3", "TIMEOUT_STOP", "duration"}}),
		Entry("negative duration", orchfileCase{text("SERVICE web\nRUN x\nRESTART_DELAY -1s\n"), []string{"Orchfile:3", "RESTART_DELAY"}}),
		Entry("boolean yes", orchfileCase{text("SERVICE web\nRUN x\nONESHOT yes\n"), []string{"Orchfile:3", "ONESHOT", "true or false"}}),
		Entry("RESTART value", orchfileCase{text("SERVICE web\nRUN x\nRESTART sometimes\n"), []string{"Orchfile:3", "RESTART", "on-failure"}}),
		Entry("RECREATE value", orchfileCase{text("SERVICE web\nFROM alpine\nRECREATE maybe\n"), []string{"Orchfile:3", "RECREATE", "never"}}),
		Entry("MEMORY unit", orchfileCase{text("SERVICE web\nRUN x\nMEMORY 10X\n"), []string{"Orchfile:3", "MEMORY", "512M"}}),
		Entry("CPUS negative", orchfileCase{text("SERVICE web\nRUN x\nCPUS -1\n"), []string{"Orchfile:3", "CPUS"}}),
		Entry("CPU_QUOTA without %", orchfileCase{text("SERVICE web\nRUN x\nCPU_QUOTA 50\n"), []string{"Orchfile:3", "CPU_QUOTA", "%"}}),
		Entry("IO_WEIGHT out of range", orchfileCase{text("SERVICE web\nRUN x\nIO_WEIGHT 5\n"), []string{"Orchfile:3", "IO_WEIGHT", "10"}}),
		Entry("LIMIT_NOFILE not an integer", orchfileCase{text("SERVICE web\nRUN x\nLIMIT_NOFILE lots\n"), []string{"Orchfile:3", "LIMIT_NOFILE"}}),
		Entry("START_LIMIT_BURST not an integer", orchfileCase{text("SERVICE web\nRUN x\nSTART_LIMIT_BURST 2.5\n"), []string{"Orchfile:3", "START_LIMIT_BURST"}}),
		Entry("PUBLISH port out of range", orchfileCase{text("SERVICE web\nFROM alpine\nPUBLISH 99999:80\n"), []string{"Orchfile:3", "PUBLISH", "65535"}}),
		Entry("PUBLISH malformed", orchfileCase{text("SERVICE web\nFROM alpine\nPUBLISH eighty\n"), []string{"Orchfile:3", "PUBLISH"}}),
		Entry("VOLUME named source with ../ (path traversal)", orchfileCase{text("SERVICE web\nFROM alpine\nVOLUME ../../etc:/data\n"), []string{"Orchfile:3", "../../etc", "volume name"}}),
		Entry("VOLUME source with $(...) (shell injection)", orchfileCase{withCanary("SERVICE web\nFROM alpine\nVOLUME $(touch CANARY):/data\n"), []string{"Orchfile:3", "VOLUME"}}),
		Entry("VOLUME relative destination", orchfileCase{text("SERVICE web\nFROM alpine\nVOLUME data:relative\n"), []string{"Orchfile:3", "absolute"}}),
		Entry("VOLUME without destination", orchfileCase{text("SERVICE web\nFROM alpine\nVOLUME nocolon\n"), []string{"Orchfile:3", "VOLUME", "source:destination"}}),
		// Encoding and size.
		Entry("binary junk", orchfileCase{junk, []string{"Orchfile:1", "UTF-8"}}),
		Entry("a 10 MB line", orchfileCase{tenMegabyteLine, []string{"Orchfile:3", "unknown directive"}}),
		Entry("a 10 MB value where a size belongs", orchfileCase{tenMegabyteMemory, []string{"Orchfile:3", "MEMORY"}}),
	)
})

// junk is deterministic binary noise with NUL bytes and invalid UTF-8.
func junk(string) []byte {
	b := make([]byte, 4096)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	b[0] = 0
	return b
}

func tenMegabyteLine(string) []byte {
	return append([]byte("SERVICE web\nRUN x\n"), append(bytes.Repeat([]byte("X"), 10<<20), '\n')...)
}

func tenMegabyteMemory(string) []byte {
	return append([]byte("SERVICE web\nRUN x\nMEMORY "), append(bytes.Repeat([]byte("9"), 10<<20), []byte("Q\n")...)...)
}

var _ = Describe("an unreadable Orchfile", Label("parser"), func() {
	DescribeTable("is refused naming the path, creating nothing",
		func(ctx SpecContext, setup func(s *sandbox) (file string, wants []string)) {
			s := newSandbox()
			file, wants := setup(s)
			for _, args := range [][]string{
				{"parse", file},
				{"validate", file},
				s.globals("--orchfile", file, "grow"),
			} {
				By("orchd " + strings.Join(args, " "))
				expectRefused(s.orchd(ctx, nil, nil, args...), wants...)
			}
			s.expectNothingCreated(ctx)
		},
		Entry("a directory", func(s *sandbox) (string, []string) {
			d := filepath.Join(s.Project, "Orchfile.d")
			Expect(os.Mkdir(d, 0o700)).To(Succeed())
			return d, []string{d, "directory"}
		}),
		Entry("a path that does not exist", func(s *sandbox) (string, []string) {
			p := filepath.Join(s.Project, "missing", "Orchfile")
			return p, []string{p, "no such file"}
		}),
		Entry("a dangling symlink", func(s *sandbox) (string, []string) {
			p := filepath.Join(s.Project, "Orchfile")
			Expect(os.Symlink(filepath.Join(s.Project, "gone"), p)).To(Succeed())
			return p, []string{p, "no such file"}
		}),
		Entry("a symlink loop", func(s *sandbox) (string, []string) {
			a, b := filepath.Join(s.Project, "a"), filepath.Join(s.Project, "b")
			Expect(os.Symlink(b, a)).To(Succeed())
			Expect(os.Symlink(a, b)).To(Succeed())
			return a, []string{a, "symbolic links"}
		}),
	)

	It("refuses a missing overlay, naming the overlay", func(ctx SpecContext) {
		s := newSandbox()
		base := s.write("Orchfile", []byte("SERVICE web\nRUN sleep 1\n"))
		overlay := filepath.Join(s.Project, "Orchfile.missing")
		expectRefused(s.orchd(ctx, nil, nil, "parse", base, overlay), overlay)
		expectRefused(s.orchd(ctx, nil, nil, s.globals("--overlay", overlay, "grow")...), overlay)
		s.expectNothingCreated(ctx)
	})

	It("refuses an error in an overlay, naming the overlay's line", func(ctx SpecContext) {
		s := newSandbox()
		base := s.write("Orchfile", []byte("SERVICE web\nFROM alpine\n"))
		overlay := s.write("Orchfile.dev", []byte("SERVICE web\n  USER nobody\n"))
		// Merged, web is a container with USER: C3 holds on the merged result.
		expectRefused(s.orchd(ctx, nil, nil, "parse", base, overlay), "Orchfile.dev:2", "USER")
		expectRefused(s.orchd(ctx, nil, nil, s.globals("--overlay", overlay, "grow")...), "Orchfile.dev:2", "USER")
		s.expectNothingCreated(ctx)
	})
})
