// Package inception runs orchd's conformance suites inside a microVM: the
// outer orchd boots an inception image with the vm runtime, the in-VM driver
// starts containerd and runs the compiled suites against it with the inner
// orchd (containerd runtime), and results stream back over the VM console.
package inception

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/orchd/orchd/harness/gobuild"
)

// Marker prefixes every event line the driver prints on the console.
const Marker = "ORCHD-INCEPTION "

// Event types, in the order the driver emits them.
const (
	EventEnv   = "env"   // guest facts (once containerd is up)
	EventSuite = "suite" // one suite finished
	EventLeaks = "leaks" // the inner leak check
	EventDone  = "done"  // last line: overall verdict
	EventLog   = "log"   // progress
)

// Event is one console line from the driver.
type Event struct {
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	Env  *GuestEnv `json:"env,omitempty"`
	// Suite results.
	Suite *SuiteResult `json:"suite,omitempty"`
	// Leaks: whether the inner containerd was left clean, and what was found.
	LeaksEmpty  *bool  `json:"leaks_empty,omitempty"`
	LeaksReport string `json:"leaks_report,omitempty"`
	Passed      bool   `json:"passed,omitempty"`
	Message     string `json:"message,omitempty"`
}

// GuestEnv are facts measured inside the VM.
type GuestEnv struct {
	Kernel            string `json:"kernel"`
	CgroupMode        string `json:"cgroup_mode"` // "v2", "v1", "hybrid"
	ContainerdVersion string `json:"containerd_version"`
	RuncVersion       string `json:"runc_version"`
	OCIRuntime        string `json:"oci_runtime"`
	MemTotalKiB       int64  `json:"mem_total_kib"`
	CPUs              int    `json:"cpus"`
	ToolsFSType       string `json:"tools_fs_type"` // filesystem at /opt/tools
}

// SuiteResult is one compiled suite's run.
type SuiteResult struct {
	Name     string        `json:"name"`
	Passed   bool          `json:"passed"`
	ExitCode int           `json:"exit_code"`
	Specs    int           `json:"specs"`
	Failed   int           `json:"failed"`
	Duration time.Duration `json:"duration"`
	// Failures names failed specs; Tail is the end of the output on failure.
	Failures []string `json:"failures,omitempty"`
	Tail     string   `json:"tail,omitempty"`
}

// Line renders e as a console line.
func (e Event) Line() string {
	b, _ := json.Marshal(e)
	return Marker + string(b) + "\n"
}

// ParseLine returns the event on a console line, if the line carries one.
func ParseLine(line []byte) (Event, bool, error) {
	i := bytes.Index(line, []byte(Marker))
	if i < 0 {
		return Event{}, false, nil
	}
	var e Event
	if err := json.Unmarshal(bytes.TrimSpace(line[i+len(Marker):]), &e); err != nil {
		return Event{}, true, fmt.Errorf("inception event %q: %w", line, err)
	}
	return e, true, nil
}

// Manifest is /opt/tools/manifest.json: what the driver runs.
type Manifest struct {
	// Suites are compiled suite binaries under /opt/tools/suites, by name
	// ("inception/inner" -> suites/inception-inner.test), run in order.
	Suites []string `json:"suites"`
	// SuiteTimeout bounds each suite.
	SuiteTimeout time.Duration `json:"suite_timeout"`
	// LabelFilter, when set, is passed as --ginkgo.label-filter.
	LabelFilter string `json:"label_filter,omitempty"`
	// Memory and CPUs are the outer Orchfile's MEMORY and CPUS, handed to
	// the suites (EnvMemory, EnvCPUs) so they can check what the VM got.
	Memory string `json:"memory"`
	CPUs   string `json:"cpus"`
	// OCIRuntime is the runc-compatible binary the inner containerd's runc
	// shim runs (runc or crun; "" = runc).
	OCIRuntime string `json:"oci_runtime,omitempty"`
	// TimeScale stretches every suite deadline (ORCHD_TIME_SCALE).
	TimeScale float64 `json:"time_scale,omitempty"`
	// Jobs is how many suites run at once against the inner containerd
	// (suiterun.Schedule: the Alone suites, leak, still run by themselves).
	Jobs int `json:"jobs,omitempty"`
}

// DriverReport is ReportsDir/driver.json, the driver's last word: written
// when every suite ran and the leak check is done. Its absence means the
// driver never finished.
type DriverReport struct {
	Env    GuestEnv `json:"env"`
	Suites []string `json:"suites"`
	// Message says why the driver stopped early ("" when it ran everything).
	Message string `json:"message,omitempty"`
}

// LeakReport is ReportsDir/leaks.json: the inner containerd after the suites.
type LeakReport struct {
	Empty  bool   `json:"empty"`
	Report string `json:"report,omitempty"`
}

// Files the driver writes into ReportsDir besides each suite's reports.
const (
	DriverFile = "driver.json"
	LeaksFile  = "leaks.json"
	// CPUFile is the guest's CPU per program (process accounting), a
	// diagnostic: it takes no part in the verdict.
	CPUFile = "guest-cpu.json"
)

// Environment the driver gives the suites it runs.
const (
	EnvMemory = "ORCHD_INCEPTION_MEMORY"
	EnvCPUs   = "ORCHD_INCEPTION_CPUS"
)

// SuiteBinary is the file name of a compiled suite.
func SuiteBinary(name string) string { return gobuild.SuiteBinary(name) }

// Guest paths.
const (
	ToolsDir     = "/opt/tools"
	ManifestPath = ToolsDir + "/manifest.json"
	// ReportsDir is shared with the host (virtio-9p, read-write): every suite
	// writes its JUnit, JSON, log and environment files here, and the host
	// decides the verdict from them (the console is progress only).
	ReportsDir = "/opt/reports"
)
