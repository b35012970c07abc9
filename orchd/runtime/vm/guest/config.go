// Package guest is the init that runs as PID 1 inside a vm service's microVM:
// it moves the initramfs into a tmpfs root, mounts the usual filesystems, loads
// kernel modules, mounts volumes, runs the service process, reports its exit
// code to the host and powers the VM off.
package guest

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// Paths inside the guest.
const (
	Dir        = "/orchd"
	ConfigPath = "/orchd/guest.json"
	Binary     = "/orchd/orchd"
	ModulesDir = "/orchd/modules"
)

// ControlPort is the virtio-serial port name the host and the init talk over.
// Host -> guest: "stop\n", "health <seq>\n" (run the HEALTHCHECK once).
// Guest -> host: "started\n" (the command was exec'd), "health <seq> <code>\n",
// "warn <text>\n" (a limit that could not be applied), "exit <code>\n".
const ControlPort = "orchd.ctl"

// StderrPort is the virtio-serial port the service command's stderr is
// written to (the serial console carries its stdout), so STDERR stays apart.
const StderrPort = "orchd.err"

// CgroupDir is the cgroup v2 group the service command (and its HEALTHCHECK
// commands) run in, so the limits apply to them and not to the init.
const CgroupDir = "/sys/fs/cgroup/service"

// InitLabel, set to "exec" in an image's config labels, makes its entrypoint
// the guest's PID 1 (Config.ExecInit).
const InitLabel = "org.orchd.vm.init"

// ExitMarker prefixes the console line that repeats the exit code for humans
// and for hosts that cannot read the control port.
const ExitMarker = "ORCHD-EXIT"

// ExitInitFailed is reported when the init cannot start the service process.
const ExitInitFailed = 125

// Config is /orchd/guest.json: everything the init needs.
type Config struct {
	Argv        []string      `json:"argv"`
	Env         []string      `json:"env"`
	Dir         string        `json:"dir"`
	UID         uint32        `json:"uid"`
	GID         uint32        `json:"gid"`
	Groups      []uint32      `json:"groups,omitempty"`
	Hostname    string        `json:"hostname"`
	Volumes     []Mount       `json:"volumes,omitempty"`
	Modules     []string      `json:"modules,omitempty"` // guest paths, in load order
	StopTimeout time.Duration `json:"stop_timeout"`
	Network     *Network      `json:"network,omitempty"`
	// Cgroup2 mounts the unified hierarchy at /sys/fs/cgroup and enables the
	// controllers for children (what containerd and runc expect).
	Cgroup2 bool `json:"cgroup2"`
	// ExecInit hands PID 1 to Argv once the root, mounts and volumes are set
	// up (an image whose entrypoint is an init, e.g. systemd; InitLabel). The
	// control port is left unopened for it: it reports "exit <code>" itself.
	ExecInit bool `json:"exec_init,omitempty"`
	// Limits are the resource directives applied to the service command.
	Limits Limits `json:"limits"`
	// Healthcheck is the argv of a command HEALTHCHECK, run on the host's
	// request with the service's env, user, workdir, cgroup and rlimits.
	Healthcheck []string `json:"healthcheck,omitempty"`
	// HealthTimeout bounds one HEALTHCHECK run (then it is killed).
	HealthTimeout time.Duration `json:"health_timeout,omitempty"`
	// Debug prints the init's steps, with the time since boot, on the console.
	Debug bool `json:"debug,omitempty"`
}

// Limits are written to CgroupDir (cgroup v2 files, raw values) and set as
// rlimits of the command. Zero values are not set.
type Limits struct {
	CPUMax    string   `json:"cpu_max,omitempty"`    // cpu.max, "QUOTA PERIOD"
	PidsMax   int64    `json:"pids_max,omitempty"`   // pids.max
	MemoryMax int64    `json:"memory_max,omitempty"` // memory.max, bytes
	IOWeight  int      `json:"io_weight,omitempty"`  // io.weight ("default N")
	Rlimits   []Rlimit `json:"rlimits,omitempty"`
}

// Rlimit is one POSIX resource limit, soft = hard.
type Rlimit struct {
	Directive string `json:"directive"` // LIMIT_NOFILE, for messages
	Resource  int    `json:"resource"`  // RLIMIT_* number
	Value     uint64 `json:"value"`
}

// Mount is one virtio-9p share.
type Mount struct {
	Tag         string `json:"tag"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only,omitempty"`
}

// Network is a static IPv4 setup for qemu's user-mode network.
type Network struct {
	Interface string `json:"interface"` // eth0
	Address   string `json:"address"`   // 10.0.2.15
	Netmask   string `json:"netmask"`   // 255.255.255.0
	Gateway   string `json:"gateway"`   // 10.0.2.2
	DNS       string `json:"dns"`       // 10.0.2.3
}

// UserNet is qemu user-mode networking's fixed layout.
func UserNet() Network {
	return Network{Interface: "eth0", Address: "10.0.2.15", Netmask: "255.255.255.0", Gateway: "10.0.2.2", DNS: "10.0.2.3"}
}

// Load reads a Config.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("guest config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("guest config %s: %w", path, err)
	}
	if len(c.Argv) == 0 {
		return nil, fmt.Errorf("guest config %s: no command (the image has no ENTRYPOINT/CMD and the service sets none)", path)
	}
	return &c, nil
}
