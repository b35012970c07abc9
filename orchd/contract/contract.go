// Package contract holds the JSON rows that flow between orchd's pipeline stages:
// Spec (package spec) -> Cuttings (sow) -> Beds (plant) -> files + processes (tend),
// and the per-service Unit that a supervisor reads.
package contract

import (
	"path/filepath"

	"github.com/orchd/orchd/orchd/spec"
)

// Version of the Cuttings, Beds and Unit contracts.
const Version = "1"

// Cuttings is what sow emits: one cutting per service, for one runtime.
type Cuttings struct {
	Version  string    `json:"version"`
	Runtime  string    `json:"runtime"`
	Env      Env       `json:"env"`
	Cuttings []Cutting `json:"cuttings"`
}

// Env is the resolved environment the rows were computed for.
type Env struct {
	ProjectDir string `json:"project_dir"`
	StateDir   string `json:"state_dir"`
	DataDir    string `json:"data_dir"`
	Namespace  string `json:"namespace"`
	Orchd      string `json:"orchd"` // absolute path of the orchd binary the cuttings call
}

// Cutting says how one service is executed by a runtime.
type Cutting struct {
	Service spec.Service `json:"service"`
	Exec    Exec         `json:"exec"`
	// Process applies to every command in Exec (host processes).
	Process Process `json:"process"`
	// Files the runtime needs written before start (e.g. a 0600 containerd-run spec).
	Files []File `json:"files,omitempty"`
	// Skip, when set, says why this service cannot run under this runtime; it is
	// reported and the rest still grow.
	Skip string `json:"skip,omitempty"`
}

// Exec holds argv vectors; no command is passed through a shell unless its argv says so.
type Exec struct {
	PreStart []string `json:"pre_start,omitempty"`
	Start    []string `json:"start"`
	Stop     []string `json:"stop,omitempty"`
	PostStop []string `json:"post_stop,omitempty"`
	// Reload is RELOAD: run on `orchd reload` beside the running service.
	Reload []string `json:"reload,omitempty"`
	// Notify says Start speaks the sd_notify protocol on $NOTIFY_SOCKET: the
	// service is starting until it sends READY=1 (a leaf sends it once the
	// container runs). Without it a service is running once exec'd.
	Notify bool `json:"notify,omitempty"`
	// NotifyHealth says Start runs the command HEALTHCHECK where the service
	// lives (inside its container) and reports X_ORCHD_HEALTH=healthy|unhealthy,
	// so the supervisor runs no command check of its own.
	NotifyHealth bool `json:"notify_health,omitempty"`
	// Leaf says Start owns its service elsewhere (a containerd task in its
	// own PID namespace): the supervisor execs it with no PID-namespace init
	// of its own, it stops what it owns on SIGTERM (sent when the supervisor
	// dies too), and it writes orchd's service log as logline records itself
	// (the streams named in logline.RecordsEnv).
	Leaf bool `json:"leaf,omitempty"`
	// Agent says a supervisor of its own may run Start (`ORCHD containerd-run
	// ARGS`) through the state dir's containerd agent instead of exec'ing it:
	// the supervisor is then the agent's client (package agent) and no leaf
	// process runs. Platforms that exec Start themselves ignore it.
	Agent bool `json:"agent,omitempty"`
}

// Process is the host-process context the supervisor applies to Exec commands.
type Process struct {
	Dir      string            `json:"dir,omitempty"`
	User     string            `json:"user,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	EnvFiles []string          `json:"env_files,omitempty"`
	Rlimits  []Rlimit          `json:"rlimits,omitempty"`
	// Resources are the cgroup limits (MEMORY, CPUS, CPU_QUOTA, TASKS_MAX,
	// IO_WEIGHT) the supervisor applies to a host service; nil = none.
	Resources *spec.Resources `json:"resources,omitempty"`
}

// Rlimit is one POSIX resource limit ("RLIMIT_NOFILE", soft, hard).
type Rlimit struct {
	Type string `json:"type"`
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
}

// File is a file a row wants written: path, content and mode (octal, e.g. 0600).
type File struct {
	Path    string `json:"path"`
	Content string `json:"content"`
	Mode    uint32 `json:"mode"`
	// WithService says Content is a JSON object that receives the cutting's
	// Service under "service" when the file is planted (Cutting.FileArtifacts):
	// the row carries the service once, so an edit of the row (jq on
	// service.timeouts.stop) reaches the leaf that reads the file.
	WithService bool `json:"with_service,omitempty"`
}

// Beds is what plant emits: the artifacts a platform installs per service.
type Beds struct {
	Version   string `json:"version"`
	Platform  string `json:"platform"`
	Namespace string `json:"namespace"`
	Scope     string `json:"scope"`
	StateDir  string `json:"state_dir"`
	Beds      []Bed  `json:"beds"`
}

// Bed is one service's artifacts.
type Bed struct {
	Label     string     `json:"label"` // <namespace>.<service>
	Service   string     `json:"service"`
	Disabled  bool       `json:"disabled,omitempty"`
	Skip      string     `json:"skip,omitempty"`
	Requires  []string   `json:"requires,omitempty"`
	After     []string   `json:"after,omitempty"`
	Artifacts []Artifact `json:"artifacts"`
}

// Artifact kinds.
const (
	KindUnit = "unit" // a supervise Unit JSON (orchdi)
	KindFile = "file" // a plain file a runtime needs
)

// Artifact is one file a platform installs.
type Artifact struct {
	Kind    string `json:"kind"`
	Path    string `json:"path"`
	Content string `json:"content"`
	Mode    uint32 `json:"mode"`
}

// Unit is what `orchd supervise --spec FILE` reads: everything one supervisor needs.
type Unit struct {
	Version   string `json:"version"`
	Label     string `json:"label"`
	Service   string `json:"service"`
	Namespace string `json:"namespace"`
	// ProjectDir is the project the unit was grown from: a namespace belongs
	// to one project, and grow from another refuses to replace its services.
	ProjectDir       string        `json:"project_dir,omitempty"`
	Runtime          string        `json:"runtime"`
	StateDir         string        `json:"state_dir"`
	Exec             Exec          `json:"exec"`
	Process          Process       `json:"process"`
	Healthcheck      string        `json:"healthcheck,omitempty"`
	ReadinessTimeout spec.Duration `json:"readiness_timeout,omitempty"`
	Oneshot          bool          `json:"oneshot"`
	Restart          spec.Restart  `json:"restart"`
	Timeouts         spec.Timeouts `json:"timeouts"`
	Stdout           string        `json:"stdout"`
	Stderr           string        `json:"stderr"`
	Requires         []Dependency  `json:"requires,omitempty"`
	After            []Dependency  `json:"after,omitempty"`
}

// Dependency names another service's label and how long to wait for it.
type Dependency struct {
	Service          string        `json:"service"`
	Label            string        `json:"label"`
	Oneshot          bool          `json:"oneshot"`
	ReadinessTimeout spec.Duration `json:"readiness_timeout"`
}

// ProjectPath resolves p against the project dir, the base of every relative
// path in an Orchfile (WORKDIR, ENV_FILE, VOLUME sources, image layouts).
func (e Env) ProjectPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(e.ProjectDir, p)
}

// ProjectPaths resolves each path with ProjectPath.
func (e Env) ProjectPaths(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, e.ProjectPath(p))
	}
	return out
}
