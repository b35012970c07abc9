package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/orchd/orchd/harness/settings"
	"github.com/orchd/orchd/harness/toolchain"
)

// CoreSuites are the suites every runtime stack must pass: the toolchain
// matrix and the inception VM run these.
func CoreSuites() []string {
	return []string{"fanout", "oneshot", "crashrestart", "leak", "specalign"}
}

// RunSuite runs the suite's specs. With ORCHD_TOOLCHAIN_MATRIX=1 (and no
// toolchain or socket chosen) a core suite instead re-runs this test binary
// once per matrix toolchain (Debian's 1.6 and the pinned 2.x, both must be
// staged), each with ORCHD_SUITE_TOOLCHAIN set, as subtests.
func RunSuite(t *testing.T, name string) {
	t.Helper()
	set, err := settings.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if set.Matrix && set.Toolchain == "" && !set.External() {
		if slices.Contains(CoreSuites(), name) {
			runMatrix(t)
			return
		}
		t.Logf("%s is not a core suite: the toolchain matrix leaves it to one run on the default toolchain", name)
	}
	RegisterFailHandler(Fail)
	RunSpecs(t, name)
}

func runMatrix(t *testing.T) {
	tcs, err := toolchain.Matrix(context.Background(), toolchain.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tcs {
		t.Run(tc.Name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], matrixArgs(os.Args[1:], tc.Name)...)
			cmd.Env = append(os.Environ(), EnvToolchain+"="+tc.Name)
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				t.Errorf("suite against toolchain %s (containerd %s): %v", tc.Name, tc.Containerd.Version, err)
			}
		})
	}
}

// matrixArgs suffixes report paths with the toolchain so runs do not overwrite each other.
func matrixArgs(args []string, tc string) []string {
	isReport := func(a string) bool {
		a = strings.TrimLeft(a, "-")
		return a == "ginkgo.junit-report" || a == "ginkgo.json-report"
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if name, v, ok := strings.Cut(a, "="); ok && isReport(name) {
			a = name + "=" + suffixPath(v, tc)
		} else if isReport(a) && i+1 < len(args) {
			out = append(out, a)
			i++
			a = suffixPath(args[i], tc)
		}
		out = append(out, a)
	}
	return out
}

func suffixPath(p, tc string) string {
	if i := strings.LastIndexByte(p, '.'); i > strings.LastIndexByte(p, '/') {
		return fmt.Sprintf("%s-%s%s", p[:i], tc, p[i:])
	}
	return p + "-" + tc
}
