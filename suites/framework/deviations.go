package framework

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/orchd/orchd/harness/matrix"
)

// Deviation is a documented, expected difference of one runtime stack from
// what a spec otherwise expects. A spec that meets one says so by name
// (Framework.Deviates); the report records the name and the reason, so
// nothing is skipped silently. suites/framework/README.md lists them all.
type Deviation struct {
	Name string
	// When says, in words, on which stack it applies.
	When   string
	Reason string
	// applies decides it for the stack the suite runs on.
	applies func(Stack) bool
}

// Stack is what the specs run on.
type Stack struct {
	// CgroupVersion is 2 on a unified-only host, else 1.
	CgroupVersion int
	// IOWeight is true when the kernel offers a block IO weight to a
	// container's cgroup (v2 io controller; v1 CFQ or BFQ).
	IOWeight bool
	// OCIRuntime names the runtime containers run with (runc, crun, runsc).
	OCIRuntime string
}

// Deviations is the one list the specs consult.
func Deviations() []Deviation {
	return []Deviation{{
		Name:    "io-weight-no-scheduler",
		When:    "cgroup v1 host whose blkio controller has neither CFQ's blkio.weight nor BFQ's blkio.bfq.* files (with runsc: no CFQ blkio.weight, the only weight file runsc writes)",
		Reason:  "the kernel offers no weight to write; runc would fail the container, so orchd starts it without IO_WEIGHT and logs \"IO_WEIGHT not applied\"",
		applies: func(s Stack) bool { return s.CgroupVersion == 1 && !s.IOWeight },
	}, {
		Name: "runsc-cgroups-from-host",
		When: "OCI runtime runsc (gVisor)",
		Reason: "the container's kernel is gVisor's Sentry: its /proc/self/cgroup and cgroup files are the sandbox's own, " +
			"not the host's, so the probe cannot read the limits from inside; runsc applies them to the sandbox's cgroup " +
			"on the host, and the spec reads them there (from the task's init, the sandbox process)",
		applies: func(s Stack) bool { return s.OCIRuntime == "runsc" },
	}, {
		Name: "runsc-netns-is-the-sandboxs",
		When: "OCI runtime runsc (gVisor)",
		Reason: "with --network=host gVisor passes the host's network through, but /proc/self/ns/net inside is the Sentry's " +
			"own namespace inode, never the host's; the spec proves host networking instead by reaching a port the container " +
			"listens on at the host's 127.0.0.1 without PUBLISH",
		applies: func(s Stack) bool { return s.OCIRuntime == "runsc" },
	}, {
		Name: "runsc-id-prefix",
		When: "OCI runtime runsc (gVisor 20221219)",
		Reason: "runsc resolves a container id by prefix, so with services loop and loop2 (ids <ns>-loop, <ns>-loop2) " +
			"every start, kill and delete of <ns>-loop fails as \"ambiguous and could refer to multiple containers\"; " +
			"the spec names its services so that no id is a prefix of another",
		applies: func(s Stack) bool { return s.OCIRuntime == "runsc" },
	}, {
		Name: "runsc-thread-high-water",
		When: "OCI runtime runsc (gVisor)",
		Reason: "containerd's OS thread count is the Go runtime's high-water mark (idle threads are never ended); " +
			"every runsc call from the shim takes far longer than runc's, so the peak of concurrent blocking calls after " +
			"the warm-up varies more (25 -> 32 seen); fds and goroutines must still return to the baseline exactly, " +
			"threads may rise by 12 instead of 4",
		applies: func(s Stack) bool { return s.OCIRuntime == "runsc" },
	}}
}

// HostStack describes the machine the suite runs on.
func HostStack() Stack {
	return hostStack("/sys/fs/cgroup", OCIRuntime())
}

func hostStack(root, ociRuntime string) Stack {
	s := Stack{CgroupVersion: 1, OCIRuntime: ociRuntime}
	if b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		s.CgroupVersion = 2
		s.IOWeight = slices.Contains(strings.Fields(string(b)), "io")
		return s
	}
	blkio := filepath.Join(root, "blkio")
	if _, err := os.Stat(filepath.Join(blkio, "blkio.weight")); err == nil {
		s.IOWeight = true
	}
	// BFQ shows no weight on the root cgroup, but any blkio.bfq.* file there
	// means child cgroups (the containers') have blkio.bfq.weight; runsc
	// writes only CFQ's blkio.weight, so orchd leaves the weight out there.
	if m, _ := filepath.Glob(filepath.Join(blkio, "blkio.bfq.*")); len(m) > 0 && ociRuntime != "runsc" {
		s.IOWeight = true
	}
	return s
}

// Deviates reports whether the named deviation applies to the stack the
// suite runs on; when it does, the spec's report records it with its reason.
// An unknown name is a programming error and fails the spec.
func (f *Framework) Deviates(name string) bool {
	GinkgoHelper()
	stack := HostStack()
	for _, d := range Deviations() {
		if d.Name != name {
			continue
		}
		if !d.applies(stack) {
			return false
		}
		AddReportEntry(matrix.DeviationEntry+d.Name, fmt.Sprintf("%s: %s", d.When, d.Reason))
		return true
	}
	Fail(fmt.Sprintf("unknown deviation %q: add it to framework.Deviations with its reason", name))
	return false
}
