// Package settings is the one reader of the environment that connects the
// harness to the suites: `orchd-harness suites` (and inception's in-VM driver)
// start a containerd, build orchd and the fixture images once, and hand them to
// each compiled suite through these variables; a plain `go test` sets none and
// the suite stages everything itself.
package settings

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/orchd/orchd/harness/daemon"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

// Variables, declared once.
const (
	// EnvSocket: use this containerd instead of starting a private one (the
	// same variable orchd's containerd runtime reads).
	EnvSocket = crd.EnvSocket
	// EnvRoot / EnvState: the external daemon's root and state dirs, for the
	// leak inspector's mount and bundle checks.
	EnvRoot  = "ORCHD_CONTAINERD_ROOT"
	EnvState = "ORCHD_CONTAINERD_STATE"
	// EnvPid / EnvLog: the external daemon's pid (fd and thread counts) and log file.
	EnvPid = "ORCHD_CONTAINERD_PID"
	EnvLog = "ORCHD_CONTAINERD_LOG"
	// EnvDebugSocket: the external daemon's debug socket (pprof goroutine counts).
	EnvDebugSocket = "ORCHD_CONTAINERD_DEBUG_SOCKET"
	// EnvOrchd: a prebuilt orchd binary (CGO_ENABLED=0, orchd-supervise beside it).
	EnvOrchd = "ORCHD_BINARY"
	// EnvImages: a directory holding fixture image layouts built earlier.
	EnvImages = "ORCHD_IMAGES_DIR"
	// EnvToolchain picks the toolchain a private daemon runs ("system" or
	// "v2.2.1"), or names the external daemon's.
	EnvToolchain = "ORCHD_SUITE_TOOLCHAIN"
	// EnvMatrix=1 re-runs a suite binary once per available toolchain.
	EnvMatrix = "ORCHD_TOOLCHAIN_MATRIX"
	// EnvSpecStream: a file each spec's result is appended to as one line
	// ("PASSED|FAILED|SKIPPED|... <seconds>s <spec text>") the moment it
	// finishes, so the runner can stream results while a suite runs.
	EnvSpecStream = "ORCHD_SPEC_STREAM"
	// EnvReportDir: each suite writes its JUnit, JSON and environment files here.
	EnvReportDir = "ORCHD_REPORT_DIR"
	// EnvWhere names where the suite runs: "host" (default) or "vm".
	EnvWhere = "ORCHD_SUITE_WHERE"
	// EnvOCIRuntime: the runc-compatible binary (runc, crun, runsc) the runc
	// shim runs containers with (the same variable orchd's containerd runtime reads).
	EnvOCIRuntime = crd.EnvOCIRuntime
	// EnvTimeScale stretches every deadline of the suites (Eventually
	// timeouts, spec and node timeouts) by this factor (>= 1, default 1): a
	// slow machine, such as a VM under TCG, gets more time for the SAME specs.
	EnvTimeScale = "ORCHD_TIME_SCALE"
)

// Settings are the values of those variables; "" and 0 mean unset.
type Settings struct {
	Socket      string
	Root        string
	State       string
	Pid         int
	Log         string
	DebugSocket string
	Orchd       string
	Images      string
	Toolchain   string
	Matrix      bool
	SpecStream  string
	ReportDir   string
	Where       string
	OCIRuntime  string
	TimeScale   float64
}

// FromEnv reads the settings from the process environment.
func FromEnv() (Settings, error) { return From(os.Getenv) }

// From reads the settings through getenv.
func From(getenv func(string) string) (Settings, error) {
	s := Settings{
		Socket:      getenv(EnvSocket),
		Root:        getenv(EnvRoot),
		State:       getenv(EnvState),
		Log:         getenv(EnvLog),
		DebugSocket: getenv(EnvDebugSocket),
		Orchd:       getenv(EnvOrchd),
		Images:      getenv(EnvImages),
		Toolchain:   getenv(EnvToolchain),
		Matrix:      getenv(EnvMatrix) == "1",
		SpecStream:  getenv(EnvSpecStream),
		ReportDir:   getenv(EnvReportDir),
		Where:       getenv(EnvWhere),
		OCIRuntime:  getenv(EnvOCIRuntime),
	}
	if v := getenv(EnvTimeScale); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 1 || f > 100 {
			return s, fmt.Errorf("%s=%q: want a factor from 1 to 100 (e.g. 3)", EnvTimeScale, v)
		}
		s.TimeScale = f
	}
	if p := getenv(EnvPid); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return s, fmt.Errorf("%s=%q: want a process id", EnvPid, p)
		}
		s.Pid = n
	}
	return s, nil
}

// FromDaemon describes a running private daemon (socket, dirs, pid, log).
func FromDaemon(d *daemon.Daemon) Settings {
	return Settings{Socket: d.Address(), Root: d.Root(), State: d.State(), Pid: d.Pid(), Log: d.LogPath()}
}

// Scale stretches d by the time scale (unset or 1: d itself).
func (s Settings) Scale(d time.Duration) time.Duration {
	if s.TimeScale <= 1 {
		return d
	}
	return time.Duration(float64(d) * s.TimeScale)
}

// External reports whether a containerd was handed over (else one is started).
func (s Settings) External() bool { return s.Socket != "" }

// Environ renders the set values as KEY=value, for a child's environment.
func (s Settings) Environ() []string {
	var out []string
	add := func(k, v string) {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	add(EnvSocket, s.Socket)
	add(EnvRoot, s.Root)
	add(EnvState, s.State)
	if s.Pid > 0 {
		add(EnvPid, strconv.Itoa(s.Pid))
	}
	add(EnvLog, s.Log)
	add(EnvDebugSocket, s.DebugSocket)
	add(EnvOrchd, s.Orchd)
	add(EnvImages, s.Images)
	add(EnvToolchain, s.Toolchain)
	if s.Matrix {
		add(EnvMatrix, "1")
	}
	add(EnvSpecStream, s.SpecStream)
	add(EnvReportDir, s.ReportDir)
	add(EnvWhere, s.Where)
	add(EnvOCIRuntime, s.OCIRuntime)
	if s.TimeScale > 1 {
		add(EnvTimeScale, strconv.FormatFloat(s.TimeScale, 'f', -1, 64))
	}
	return out
}
