package containerd

import (
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

// RunSpecVersion is the version of the RunSpec JSON this orchd reads and writes.
const RunSpecVersion = "1"

// RunSpec is everything `orchd containerd-run` needs to run one service. It is
// written 0600 to the state dir because Service.Env may hold secrets; ENV_FILE
// paths travel as paths and are read by the leaf when it starts.
type RunSpec struct {
	Version string `json:"version"`
	// Namespace is both orchd's namespace and the containerd namespace.
	Namespace   string `json:"namespace"`
	ContainerID string `json:"container_id"`
	// Socket is the containerd address; empty = ORCHD_CONTAINERD_SOCKET at run
	// time, else DefaultSocket.
	Socket      string `json:"socket,omitempty"`
	Snapshotter string `json:"snapshotter,omitempty"`
	// OCIRuntime is the binary the runc shim runs (its BinaryName option):
	// runc, crun, runsc or a path; empty = the shim's default, runc.
	OCIRuntime string       `json:"oci_runtime,omitempty"`
	Service    spec.Service `json:"service"`
	ProjectDir string       `json:"project_dir"`
	DataDir    string       `json:"data_dir"`
	StateDir   string       `json:"state_dir"`
	Label      string       `json:"label"`
	EnvFiles   []string     `json:"env_files,omitempty"`
}

// Encode renders the spec as indented JSON.
func (r *RunSpec) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode run spec: %w", err)
	}
	return append(b, '\n'), nil
}

// DecodeRunSpec parses and validates a RunSpec.
func DecodeRunSpec(b []byte) (*RunSpec, error) {
	var r RunSpec
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode run spec: %w", err)
	}
	if r.Version != RunSpecVersion {
		return nil, fmt.Errorf("run spec version %q: this orchd reads version %q", r.Version, RunSpecVersion)
	}
	if r.Namespace == "" || r.ContainerID == "" || r.Service.Name == "" || r.Service.Image == "" {
		return nil, fmt.Errorf("run spec: namespace, container_id, service.name and service.image are required")
	}
	return &r, nil
}

// LoadRunSpec reads a RunSpec from a file or, when file is empty, from a base64
// string (the --spec form).
func LoadRunSpec(file, b64 string) (*RunSpec, error) {
	switch {
	case file != "" && b64 != "":
		return nil, fmt.Errorf("give --spec-file or --spec, not both")
	case file != "":
		b, err := contract.ReadPrivate(file)
		if err != nil {
			return nil, fmt.Errorf("read run spec: %w", err)
		}
		rs, err := DecodeRunSpec(b)
		if err != nil {
			return nil, fmt.Errorf("run spec %s: %w", file, err)
		}
		return rs, nil
	case b64 != "":
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("decode --spec base64: %w", err)
		}
		rs, err := DecodeRunSpec(b)
		if err != nil {
			return nil, fmt.Errorf("--spec: %w", err)
		}
		// A command line is world-readable (/proc/<pid>/cmdline): ENV values
		// may only travel in a 0600 --spec-file.
		if len(rs.Service.Env) > 0 {
			return nil, fmt.Errorf("--spec carries ENV values, which must not appear on a command line: write the run spec to a 0600 file and pass --spec-file")
		}
		return rs, nil
	}
	return nil, fmt.Errorf("a run spec is required: --spec-file FILE or --spec BASE64")
}
