package framework

import (
	"fmt"
	"os"
	"strconv"
	"time"

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

// Scaled stretches a deadline by ORCHD_TIME_SCALE (set by inception for a
// VM under TCG): the same spec, more time. A malformed value fails loudly.
func Scaled(d time.Duration) time.Duration {
	s, err := settings.FromEnv()
	if err != nil {
		panic(err.Error())
	}
	return s.Scale(d)
}

// SpecDeadline is Ginkgo's SpecTimeout stretched by ORCHD_TIME_SCALE; specs
// use it instead of SpecTimeout so one setting moves every deadline.
func SpecDeadline(d time.Duration) SpecTimeout { return SpecTimeout(Scaled(d)) }

// NodeDeadline is Ginkgo's NodeTimeout stretched by ORCHD_TIME_SCALE.
func NodeDeadline(d time.Duration) NodeTimeout { return NodeTimeout(Scaled(d)) }
