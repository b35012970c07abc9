package framework

import (
	"fmt"
	"os"
	"strconv"
)

// Environment variables the framework reads. orchd-harness suites sets them
// when it runs a compiled suite against its own daemon; a plain `go test`
// sets none and the framework stages everything itself.
const (
	// EnvSocket: use this containerd instead of starting a private one.
	EnvSocket = "ORCHD_CONTAINERD_SOCKET"
	// EnvRoot / EnvState: the external daemon's root and state dirs, for the
	// leak inspector's mount and bundle checks (default: containerd's defaults).
	EnvRoot  = "ORCHD_CONTAINERD_ROOT"
	EnvState = "ORCHD_CONTAINERD_STATE"
	// EnvPid / EnvLog: the external daemon's pid (fd and thread counts) and log file.
	EnvPid = "ORCHD_CONTAINERD_PID"
	EnvLog = "ORCHD_CONTAINERD_LOG"
	// EnvDebugSocket: the external daemon's debug socket (pprof goroutine counts).
	EnvDebugSocket = "ORCHD_CONTAINERD_DEBUG_SOCKET"
	// EnvOrchd: a prebuilt orchd binary (CGO_ENABLED=0) instead of building one.
	EnvOrchd = "ORCHD_BINARY"
	// EnvImages: a directory holding fixture image layouts built earlier.
	EnvImages = "ORCHD_IMAGES_DIR"
	// EnvToolchain picks the toolchain a private daemon runs ("system" or
	// "v2.2.1"); ORCHD_TOOLCHAIN itself is the toolchain package's explicit dir.
	EnvToolchain = "ORCHD_SUITE_TOOLCHAIN"
	// EnvMatrix=1 re-runs the suite binary once per available toolchain.
	EnvMatrix = "ORCHD_TOOLCHAIN_MATRIX"
)

// Default locations of a stock containerd.
const (
	defaultRoot  = "/var/lib/containerd"
	defaultState = "/run/containerd"
)

// EnvInt reads a positive integer setting, with a default.
func EnvInt(name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		panic(fmt.Sprintf("%s=%q: want a positive integer", name, v))
	}
	return n
}
