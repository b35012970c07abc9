// Package spec parses Orchfiles (spec 0.2.1) into the Spec JSON contract.
package spec

import "time"

// Version is the Orchfile language version this parser implements.
const Version = "0.2.1"

// Mode says how a service runs.
type Mode string

const (
	ModeContainer Mode = "container" // FROM image
	ModeHost      Mode = "host"      // RUN command
)

// RestartPolicy is the JSON spelling of RESTART.
type RestartPolicy string

const (
	RestartNo        RestartPolicy = "no"
	RestartAlways    RestartPolicy = "always"
	RestartOnFailure RestartPolicy = "on_failure"
)

// Defaults from the language reference.
const (
	DefaultReadinessTimeout   = Duration("90s")
	DefaultRestartDelay       = Duration("1s")
	DefaultStartLimitBurst    = 5
	DefaultStartLimitInterval = Duration("10s")
	DefaultTimeoutStart       = Duration("90s")
	DefaultTimeoutStop        = Duration("10s")
)

// Spec is the merged, expanded result of parsing an Orchfile and its overlays.
type Spec struct {
	Version  string            `json:"version"`
	Args     map[string]string `json:"args,omitempty"`
	Services []Service         `json:"services"`
}

// Service is one SERVICE block after merging and expansion.
type Service struct {
	Name             string            `json:"name"`
	Mode             Mode              `json:"mode"`
	Image            string            `json:"image,omitempty"`
	RunCommand       string            `json:"run_command,omitempty"`
	Entrypoint       string            `json:"entrypoint,omitempty"`
	Cmd              string            `json:"cmd,omitempty"`
	Publish          []Publish         `json:"publish,omitempty"`
	Volumes          []Volume          `json:"volumes,omitempty"`
	User             string            `json:"user,omitempty"`
	StopCommand      string            `json:"stop_command,omitempty"`
	ReloadCommand    string            `json:"reload_command,omitempty"`
	Workdir          string            `json:"workdir,omitempty"`
	Env              map[string]string `json:"env,omitempty"`
	EnvFiles         []string          `json:"env_files,omitempty"`
	Requires         []string          `json:"requires,omitempty"`
	After            []string          `json:"after,omitempty"`
	Healthcheck      string            `json:"healthcheck,omitempty"`
	ReadinessTimeout Duration          `json:"readiness_timeout,omitempty"`
	Oneshot          bool              `json:"oneshot"`
	Disabled         bool              `json:"disabled"`
	Recreate         string            `json:"recreate"`
	Restart          Restart           `json:"restart"`
	Timeouts         Timeouts          `json:"timeouts"`
	Resources        Resources         `json:"resources"`
	Logging          Logging           `json:"logging"`
}

// Publish is one PUBLISH [addr:]host:container.
type Publish struct {
	Host      int    `json:"host"`
	Container int    `json:"container"`
	HostIP    string `json:"host_ip,omitempty"`
}

// Volume is one VOLUME source:dest. A source not starting with "/" is a named volume.
type Volume struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
	IsNamed     bool   `json:"is_named"`
}

// Restart holds the restart policy and its start limit.
type Restart struct {
	Policy             RestartPolicy `json:"policy"`
	Delay              Duration      `json:"delay,omitempty"`
	StartLimitBurst    int           `json:"start_limit_burst,omitempty"`
	StartLimitInterval Duration      `json:"start_limit_interval,omitempty"`
}

// Timeouts holds TIMEOUT_START and TIMEOUT_STOP.
type Timeouts struct {
	Start Duration `json:"start,omitempty"`
	Stop  Duration `json:"stop,omitempty"`
}

// Resources holds the resource limits; zero values mean "not set".
type Resources struct {
	Memory      string   `json:"memory,omitempty"`    // integer + K/M/G
	CPUs        *float64 `json:"cpus,omitempty"`      // fractional allowed
	CPUQuota    string   `json:"cpu_quota,omitempty"` // integer + "%"
	LimitNofile int64    `json:"limit_nofile,omitempty"`
	LimitNproc  int64    `json:"limit_nproc,omitempty"`
	TasksMax    int64    `json:"tasks_max,omitempty"`
	IOWeight    int      `json:"io_weight,omitempty"`
}

// Logging holds STDOUT/STDERR paths.
type Logging struct {
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
}

// Duration is a spec duration as written ("30s", "5m").
type Duration string

// Std converts d to a time.Duration; an empty or invalid value yields def.
func (d Duration) Std(def time.Duration) time.Duration {
	v, err := ParseDuration(string(d))
	if err != nil {
		return def
	}
	return v
}
