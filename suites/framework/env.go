package framework

import (
	"fmt"
	"os"
	"strconv"

	. "github.com/onsi/ginkgo/v2" //nolint:revive

	"github.com/orchd/orchd/harness/settings"
)

// Environment variables the framework reads, declared in harness/settings.
// orchd-harness suites sets them when it runs a compiled suite against its own
// daemon; a plain `go test` sets none and the framework stages everything itself.
const (
	EnvSocket      = settings.EnvSocket
	EnvRoot        = settings.EnvRoot
	EnvState       = settings.EnvState
	EnvPid         = settings.EnvPid
	EnvLog         = settings.EnvLog
	EnvDebugSocket = settings.EnvDebugSocket
	EnvOrchd       = settings.EnvOrchd
	EnvImages      = settings.EnvImages
	EnvToolchain   = settings.EnvToolchain
	EnvMatrix      = settings.EnvMatrix
	EnvReportDir   = settings.EnvReportDir
	EnvWhere       = settings.EnvWhere
	EnvOCIRuntime  = settings.EnvOCIRuntime
)

// readSettings reads the environment once per setup step; a malformed value
// fails the suite.
func readSettings() settings.Settings {
	s, err := settings.FromEnv()
	if err != nil {
		Fail(err.Error())
	}
	return s
}

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
