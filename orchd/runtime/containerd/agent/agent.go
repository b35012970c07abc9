// Package agent runs a grove's container services through one process: the
// containerd agent (`orchd containerd-agent`, package server) holds the
// containerd client for every container service of a state dir, and each
// service's supervisor is a client of it (package supervise, spawnAgent).
//
// Why: a leaf that linked the containerd client cost every container service
// a Go process start with the client's package initialisation, its own
// connection and its own reads of the image (about 30 ms of CPU and 20 MB
// of peak RSS each); N services starting at once on a small machine queue on
// that CPU. The agent pays it once, as a program with one client would; the
// supervisor, which links only this package, speaks to it directly, so a
// container service costs one orchd process, not two.
//
// What a leaf process did, the client does: it hands the agent the
// service's log as stdout and stderr (over the socket), receives its
// sd_notify notices as messages, asks it to stop the service (STOP,
// TIMEOUT_STOP), and gets the task's exit code. A client that dies (its
// supervisor SIGKILLed) ends its connection, and the agent stops and
// removes its task as a dying leaf would have.
//
// The agent's life: the first client that finds none starts it (under an
// exclusive flock, so only one starts); it exits once its last client has
// gone, after closing its socket under the same lock so a client arriving
// meanwhile starts a new one instead of reaching a closing agent. The last
// client waits for the agent's exit, so a grove whose supervisors are gone
// has no agent either.
//
// This package is the client side and the protocol; it links no containerd
// code, so the supervisor-only binary can be a client.
package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"

	"github.com/orchd/orchd/orchd/contract"
)

// Command is the orchd subcommand that runs the agent.
const Command = "containerd-agent"

// Request is a leaf's first message, sent with its stdout and stderr (in
// that order) as SCM_RIGHTS.
type Request struct {
	// SpecFile or Spec (base64 JSON) is the run spec, as containerd-run takes it.
	SpecFile string `json:"spec_file,omitempty"`
	Spec     string `json:"spec,omitempty"`
	// Drain, instead of a service, asks the agent to answer once every
	// service it runs for Namespace (those named in Services, or all) has
	// ended: fell sends it before its sweep, so a service whose leaf was
	// killed is not still being torn down by the agent meanwhile. It comes
	// without descriptors, and reaches only an agent already running.
	Drain bool `json:"drain,omitempty"`
	// Hold, instead of a service, keeps the agent until the connection
	// closes: tend starts the agent (and its containerd connection for
	// Namespace) while it starts the supervisors, so their leaves find it
	// ready. It comes without descriptors.
	Hold      bool     `json:"hold,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	Services  []string `json:"services,omitempty"`
	// Notify says the client takes the service's sd_notify notices (READY=1
	// once containerd runs the task, MAINPID, health verdicts) as Notify
	// messages: its supervisor follows the service's readiness.
	Notify bool `json:"notify,omitempty"`
	// Env is the leaf's environment (the socket variable, the log records
	// variable): the agent runs the service as the leaf
	// would have, with this environment rather than its own.
	Env []string `json:"env,omitempty"`
}

// Message is every later message, in either direction: one JSON object per line.
type Message struct {
	// Accepted (agent): the agent counts this leaf; it will not exit before
	// the leaf has gone.
	Accepted bool `json:"accepted,omitempty"`
	// Notify (agent): an sd_notify state for the leaf to send its supervisor.
	Notify string `json:"notify,omitempty"`
	// Exit (agent): the task's exit code; the service has ended.
	Exit *int `json:"exit,omitempty"`
	// Error (agent): the service could not be run (the leaf exits 1).
	Error string `json:"error,omitempty"`
	// Bye (agent), after the leaf closed its side: ByeExiting when this was
	// the agent's last leaf, ByeStaying otherwise.
	Bye string `json:"bye,omitempty"`
	// Stop (leaf): stop the service (SIGTERM, grace, SIGKILL) and report its exit.
	Stop bool `json:"stop,omitempty"`
}

// Bye values.
const (
	ByeExiting = "exiting"
	ByeStaying = "staying"
)

// LockFile serializes the agent's start and exit with the leaves' connects:
// leaves hold it shared while connecting, a starting or exiting agent's
// leaf and the exiting agent exclusively.
func LockFile(stateDir string) string {
	return filepath.Join(contract.Layout{StateDir: stateDir}.RunDir(), "containerd-agent.lock")
}

// LogFile is where the agent's own messages go (each service's go to its log).
func LogFile(stateDir string) string {
	return filepath.Join(contract.Layout{StateDir: stateDir}.LogDir(), "containerd-agent.log")
}

// Address is the agent's socket for stateDir: an abstract unix socket on
// Linux (no file to go stale when the agent is SIGKILLed; the agent admits
// peers of its own uid only), named by a hash of the state dir.
func Address(stateDir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	return socketAddress(stateDir, hex.EncodeToString(sum[:12]))
}
