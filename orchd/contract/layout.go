package contract

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Layout names the files orchd keeps under its state dir. Every component that
// reads or writes state goes through it, so the tree is described in one place:
//
//	<state>/run/<label>.unit.json    the supervisor's Unit (0600)
//	<state>/run/<label>.crun.json    a containerd-run spec (0600)
//	<state>/run/<label>.pid          the supervisor's pid
//	<state>/status/<label>.json      the supervisor's Status (atomic writes)
//	<state>/status/<label>.ready     the ready marker (oneshot exit 0 / healthy)
//	<state>/logs/<label>.log         the service's output (default STDOUT/STDERR)
//	<state>/logs/<label>.supervise.log  the supervisor's own log
//	<state>/logs/<label>.paths.json  a service's own STDOUT/STDERR paths (kept after fell)
//	<state>/notify/<label>.sock      the supervisor's sd_notify socket (dir 0700)
//	<state>/run/.<ns>.image.lock     the containerd leaves' image import lock
//	<state>/run/<label>.vm.json      a vm-run spec (0600)
//	<state>/run/<label>.vm.d/        a vm leaf's scratch dir (initramfs), removed on exit
//	<state>/fifo/<label>/            a containerd task's stdio FIFOs
//	<data>/volumes/<ns>/<name>/      a named VOLUME (VolumesDir, NamedVolume)
type Layout struct{ StateDir string }

func (l Layout) RunDir() string    { return filepath.Join(l.StateDir, "run") }
func (l Layout) StatusDir() string { return filepath.Join(l.StateDir, "status") }
func (l Layout) LogDir() string    { return filepath.Join(l.StateDir, "logs") }

func (l Layout) UnitFile(label string) string   { return filepath.Join(l.RunDir(), label+".unit.json") }
func (l Layout) CrunFile(label string) string   { return filepath.Join(l.RunDir(), label+".crun.json") }
func (l Layout) PidFile(label string) string    { return filepath.Join(l.RunDir(), label+".pid") }
func (l Layout) StatusFile(label string) string { return filepath.Join(l.StatusDir(), label+".json") }
func (l Layout) ReadyFile(label string) string  { return filepath.Join(l.StatusDir(), label+".ready") }
func (l Layout) LogFile(label string) string    { return filepath.Join(l.LogDir(), label+".log") }
func (l Layout) SuperviseLog(label string) string {
	return filepath.Join(l.LogDir(), label+".supervise.log")
}

// LogPaths records where a service's STDOUT and STDERR go when the Orchfile
// names paths, so its logs stay readable after fell removed its unit.
func (l Layout) LogPaths(label string) string {
	return filepath.Join(l.LogDir(), label+".paths.json")
}

// ImageLock serializes the containerd leaves' image imports of a namespace; it
// lives beside the run files so fell removes it with them.
func (l Layout) ImageLock(namespace string) string {
	return filepath.Join(l.RunDir(), "."+namespace+".image.lock")
}

// VMSpecFile is a vm service's vm-run spec.
func (l Layout) VMSpecFile(label string) string { return filepath.Join(l.RunDir(), label+".vm.json") }

// VMWorkDir is a vm leaf's scratch directory (initramfs, guest config).
func (l Layout) VMWorkDir(label string) string { return filepath.Join(l.RunDir(), label+".vm.d") }

// FIFORoot holds the containerd tasks' stdio FIFOs, inside the state dir so a
// sweep finds what a killed leaf left.
func (l Layout) FIFORoot() string { return filepath.Join(l.StateDir, "fifo") }

// FIFODir is one service's FIFO dir.
func (l Layout) FIFODir(label string) string { return filepath.Join(l.FIFORoot(), label) }

// VolumesDir holds the named volumes orchd creates for a namespace. Named
// volumes are kept apart per namespace even when two namespaces share a data
// dir, so `fell --volumes` in one never touches another's.
func VolumesDir(dataDir, namespace string) string {
	return filepath.Join(dataDir, "volumes", namespace)
}

// NamedVolume is the directory behind the named volume name of a namespace.
func NamedVolume(dataDir, namespace, name string) string {
	return filepath.Join(VolumesDir(dataDir, namespace), name)
}

// NotifyDir holds the supervisors' sd_notify sockets.
func (l Layout) NotifyDir() string { return filepath.Join(l.StateDir, "notify") }

// maxSocketPath is the longest path a unix socket address holds (sun_path,
// 108 bytes with the terminating NUL).
const maxSocketPath = 107

// NotifySocket is the sd_notify socket of a service's supervisor. When the
// label makes the path too long for a socket address, a fixed-length hash of
// the label names it instead.
func (l Layout) NotifySocket(label string) string {
	p := filepath.Join(l.NotifyDir(), label+".sock")
	if len(p) <= maxSocketPath {
		return p
	}
	sum := sha256.Sum256([]byte(label))
	return filepath.Join(l.NotifyDir(), hex.EncodeToString(sum[:8])+".sock")
}

// Health verdicts of a HEALTHCHECK (Status.Health).
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Label is the platform-wide name of a service: <namespace>.<service>.
func Label(namespace, service string) string { return namespace + "." + service }

// States a supervisor reports.
const (
	StateWaiting    = "waiting"
	StateStarting   = "starting"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateExited     = "exited"
	StateFailed     = "failed"
	StateStopped    = "stopped"
)

// Status is a supervisor's view of its service, written atomically after each change.
type Status struct {
	Label   string `json:"label"`
	Service string `json:"service"`
	State   string `json:"state"`
	// Pid is the service's main process: MAINPID when the start command sent
	// one (a container's task pid), else the start command's pid.
	Pid int `json:"pid"`
	// LeafPid is the start command's pid (a leaf such as containerd-run), or
	// for a service run by the state dir's containerd agent, the agent's.
	LeafPid       int  `json:"leaf_pid,omitempty"`
	SupervisorPid int  `json:"supervisor_pid"`
	Restarts      int  `json:"restarts"`
	ExitCode      *int `json:"exit_code,omitempty"`
	// Healthy means ready for dependents: running, READY, and healthy when
	// the service has a HEALTHCHECK.
	Healthy bool `json:"healthy"`
	// Health is the HEALTHCHECK's verdict: "" (no check), "starting",
	// "healthy" or "unhealthy".
	Health  string    `json:"health,omitempty"`
	Since   time.Time `json:"since"`
	Message string    `json:"message,omitempty"`
	// Hash of the Unit the supervisor runs; grow compares it to decide "changed".
	UnitHash string `json:"unit_hash,omitempty"`
}

// ReadPrivate reads a state file that may hold secrets (a Unit, a run spec),
// refusing one that is not a regular file or that others may read or write.
func ReadPrivate(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: it may hold secrets, so it must be 0600 (chmod 0600 %s)", path, perm, path)
	}
	return os.ReadFile(path)
}

// Create makes the state dir and its run, status and log dirs, private to
// the owner (also when they existed with a wider mode): they hold every
// service's spec and log.
func (l Layout) Create() error {
	for _, d := range []string{l.StateDir, l.RunDir(), l.StatusDir(), l.LogDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("state dir: %w", err)
		}
	}
	return nil
}

// CrunUnit is the unit file beside a containerd-run spec file (the path a
// leaf's argv names): what ties a leaf whose supervisor is gone to its unit.
func CrunUnit(crunFile string) (string, bool) {
	base, ok := strings.CutSuffix(crunFile, ".crun.json")
	if !ok {
		return "", false
	}
	return base + ".unit.json", true
}
