package spec

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// kind says how a directive takes part in parsing and merging.
type kind uint8

const (
	kindGlobal  kind = iota // ORCH_VERSION, ARG
	kindService             // SERVICE
	kindScalar              // last wins across files; once per block
	kindList                // ENV, ENV_FILE, PUBLISH, VOLUME, REQUIRES, AFTER
	kindClear               // CLEAR
)

// directive describes one keyword.
type directive struct {
	kind  kind
	usage string // example form, used in hints
	only  Mode   // non-empty: valid only for services of this mode (C2/C3)
	// check validates a scalar value after expansion; it returns a message (empty
	// when valid) and an optional hint.
	check func(v string) (msg, hint string)
}

// directives is the keyword table. It is read-only after initialization.
var directives = map[string]directive{
	"ORCH_VERSION": {kind: kindGlobal, usage: "ORCH_VERSION " + Version},
	"ARG":          {kind: kindGlobal, usage: "ARG name=default"},
	"SERVICE":      {kind: kindService, usage: "SERVICE name"},
	"CLEAR":        {kind: kindClear, usage: "CLEAR ENV|ENV_FILE|PUBLISH|VOLUME|REQUIRES|AFTER"},

	"FROM": {kind: kindScalar, usage: "FROM image", check: checkNoSpace("an image reference")},
	"RUN":  {kind: kindScalar, usage: "RUN command"},

	"ENTRYPOINT": {kind: kindScalar, usage: "ENTRYPOINT command", only: ModeContainer},
	"CMD":        {kind: kindScalar, usage: "CMD arguments", only: ModeContainer},
	"PUBLISH":    {kind: kindList, usage: "PUBLISH [addr:]host:container", only: ModeContainer},
	"VOLUME":     {kind: kindList, usage: "VOLUME source:/destination", only: ModeContainer},

	"USER":   {kind: kindScalar, usage: "USER name", only: ModeHost, check: checkNoSpace("a user name")},
	"STOP":   {kind: kindScalar, usage: "STOP command", only: ModeHost},
	"RELOAD": {kind: kindScalar, usage: "RELOAD command", only: ModeHost},

	"WORKDIR":              {kind: kindScalar, usage: "WORKDIR path"},
	"ENV":                  {kind: kindList, usage: "ENV KEY=value"},
	"ENV_FILE":             {kind: kindList, usage: "ENV_FILE path"},
	"REQUIRES":             {kind: kindList, usage: "REQUIRES service [service...]"},
	"AFTER":                {kind: kindList, usage: "AFTER service [service...]"},
	"HEALTHCHECK":          {kind: kindScalar, usage: "HEALTHCHECK http://host:port/path | command", check: checkHealthcheck},
	"READINESS_TIMEOUT":    {kind: kindScalar, usage: "READINESS_TIMEOUT 90s", check: checkDuration},
	"ONESHOT":              {kind: kindScalar, usage: "ONESHOT true", check: checkBool},
	"DISABLED":             {kind: kindScalar, usage: "DISABLED true", check: checkBool},
	"RECREATE":             {kind: kindScalar, usage: "RECREATE always|never", check: checkOneOf("always", "never")},
	"RESTART":              {kind: kindScalar, usage: "RESTART no|always|on-failure", check: checkOneOf("no", "always", "on-failure")},
	"RESTART_DELAY":        {kind: kindScalar, usage: "RESTART_DELAY 1s", check: checkDuration},
	"START_LIMIT_BURST":    {kind: kindScalar, usage: "START_LIMIT_BURST 5", check: checkPositive(31)},
	"START_LIMIT_INTERVAL": {kind: kindScalar, usage: "START_LIMIT_INTERVAL 10s", check: checkDuration},
	"TIMEOUT_START":        {kind: kindScalar, usage: "TIMEOUT_START 90s", check: checkDuration},
	"TIMEOUT_STOP":         {kind: kindScalar, usage: "TIMEOUT_STOP 10s", check: checkDuration},
	"MEMORY":               {kind: kindScalar, usage: "MEMORY 512M", check: checkMemory},
	"CPUS":                 {kind: kindScalar, usage: "CPUS 1.5", check: checkCPUs},
	"CPU_QUOTA":            {kind: kindScalar, usage: "CPU_QUOTA 150%", check: checkCPUQuota},
	"LIMIT_NOFILE":         {kind: kindScalar, usage: "LIMIT_NOFILE 65536", check: checkPositive(63)},
	"LIMIT_NPROC":          {kind: kindScalar, usage: "LIMIT_NPROC 4096", check: checkPositive(63)},
	"TASKS_MAX":            {kind: kindScalar, usage: "TASKS_MAX 4096", check: checkPositive(63)},
	"IO_WEIGHT":            {kind: kindScalar, usage: "IO_WEIGHT 500", check: checkIOWeight},
	"STDOUT":               {kind: kindScalar, usage: "STDOUT path"},
	"STDERR":               {kind: kindScalar, usage: "STDERR path"},
}

// Slots of the scalar directives in a scalarSet, in scalarNames order.
const (
	slotFrom = iota
	slotRun
	slotEntrypoint
	slotCmd
	slotUser
	slotStop
	slotReload
	slotWorkdir
	slotHealthcheck
	slotReadinessTimeout
	slotOneshot
	slotDisabled
	slotRecreate
	slotRestart
	slotRestartDelay
	slotStartLimitBurst
	slotStartLimitInterval
	slotTimeoutStart
	slotTimeoutStop
	slotMemory
	slotCpus
	slotCpuQuota
	slotLimitNofile
	slotLimitNproc
	slotTasksMax
	slotIoWeight
	slotStdout
	slotStderr
	numScalars
)

// scalarNames are the scalar directives by slot; scalarSlot maps each name to
// its slot. Both are read-only after initialization.
var scalarNames = [numScalars]string{
	slotFrom:               "FROM",
	slotRun:                "RUN",
	slotEntrypoint:         "ENTRYPOINT",
	slotCmd:                "CMD",
	slotUser:               "USER",
	slotStop:               "STOP",
	slotReload:             "RELOAD",
	slotWorkdir:            "WORKDIR",
	slotHealthcheck:        "HEALTHCHECK",
	slotReadinessTimeout:   "READINESS_TIMEOUT",
	slotOneshot:            "ONESHOT",
	slotDisabled:           "DISABLED",
	slotRecreate:           "RECREATE",
	slotRestart:            "RESTART",
	slotRestartDelay:       "RESTART_DELAY",
	slotStartLimitBurst:    "START_LIMIT_BURST",
	slotStartLimitInterval: "START_LIMIT_INTERVAL",
	slotTimeoutStart:       "TIMEOUT_START",
	slotTimeoutStop:        "TIMEOUT_STOP",
	slotMemory:             "MEMORY",
	slotCpus:               "CPUS",
	slotCpuQuota:           "CPU_QUOTA",
	slotLimitNofile:        "LIMIT_NOFILE",
	slotLimitNproc:         "LIMIT_NPROC",
	slotTasksMax:           "TASKS_MAX",
	slotIoWeight:           "IO_WEIGHT",
	slotStdout:             "STDOUT",
	slotStderr:             "STDERR",
}

var scalarSlot = func() map[string]int {
	m := make(map[string]int, len(scalarNames))
	for i, n := range scalarNames {
		m[n] = i
	}
	return m
}()

// clearable are the lists CLEAR may empty.
var clearable = [...]string{"ENV", "ENV_FILE", "PUBLISH", "VOLUME", "REQUIRES", "AFTER"}

func isClearable(s string) bool {
	for _, c := range clearable {
		if c == s {
			return true
		}
	}
	return false
}

func checkNoSpace(what string) func(string) (string, string) {
	return func(v string) (string, string) {
		if strings.ContainsAny(v, " \t") {
			return fmt.Sprintf("%s must not contain spaces: %s", what, quote(v)), ""
		}
		return "", ""
	}
}

func checkDuration(v string) (string, string) {
	if _, err := ParseDuration(v); err != nil {
		return fmt.Sprintf("invalid duration %s", quote(v)), "a duration is a number with a unit (ms, s, m, h), e.g. 500ms, 30s or 5m"
	}
	return "", ""
}

func checkBool(v string) (string, string) {
	if v == "true" || v == "false" {
		return "", ""
	}
	return fmt.Sprintf("invalid boolean %s", quote(v)), "write true or false"
}

func checkOneOf(allowed ...string) func(string) (string, string) {
	return func(v string) (string, string) {
		for _, a := range allowed {
			if v == a {
				return "", ""
			}
		}
		hint := "one of: " + strings.Join(allowed, ", ")
		for _, a := range allowed {
			if strings.EqualFold(strings.ReplaceAll(v, "_", "-"), a) {
				hint = "did you mean " + a + "?"
			}
		}
		return fmt.Sprintf("invalid value %s", quote(v)), hint
	}
}

func checkPositive(bits int) func(string) (string, string) {
	return func(v string) (string, string) {
		if _, err := parsePositiveInt(v, bits); err != nil {
			return fmt.Sprintf("invalid value %s: want a positive integer", quote(v)), ""
		}
		return "", ""
	}
}

func checkMemory(v string) (string, string) {
	n, err := ParseSize(v)
	if err != nil {
		return fmt.Sprintf("invalid size %s", quote(v)), "a size is an integer followed by K, M or G (uppercase, 1024-based), e.g. 512M"
	}
	if n <= 0 {
		return fmt.Sprintf("invalid size %s: must be greater than 0", quote(v)), ""
	}
	return "", ""
}

func checkCPUs(v string) (string, string) {
	if !validCPUs(v) {
		return fmt.Sprintf("invalid CPUS %s: want a number greater than 0", quote(v)), "e.g. CPUS 2 or CPUS 0.5"
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		return fmt.Sprintf("invalid CPUS %s: want a number greater than 0", quote(v)), "e.g. CPUS 2 or CPUS 0.5"
	}
	return "", ""
}

func checkCPUQuota(v string) (string, string) {
	if _, err := ParseCPUQuota(v); err != nil {
		return fmt.Sprintf("invalid CPU_QUOTA %s: want a positive integer followed by %%", quote(v)), "e.g. CPU_QUOTA 150% (may exceed 100%)"
	}
	return "", ""
}

func checkIOWeight(v string) (string, string) {
	n, err := parsePositiveInt(v, 31)
	if err != nil || n < 10 || n > 1000 {
		return fmt.Sprintf("invalid IO_WEIGHT %s: want an integer from 10 to 1000", quote(v)), ""
	}
	return "", ""
}

func checkHealthcheck(v string) (string, string) {
	if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
		return "", "" // a command
	}
	u, err := url.Parse(placeholderBuiltins(v, "1"))
	if err != nil || u.Host == "" {
		return fmt.Sprintf("invalid HEALTHCHECK URL %s", quote(v)), "e.g. HEALTHCHECK http://localhost:8080/health"
	}
	return "", ""
}

// quote renders a value for an error message, shortened so that a huge line does
// not produce a huge message.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && s[cut]&0xC0 == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}

// suggest returns the known directive closest to an unknown keyword, or "".
func suggest(kw string) string {
	if len(kw) > 32 {
		return ""
	}
	up := strings.ToUpper(kw)
	best, bestD := "", 3
	for name := range directives {
		d := editDistance(up, name)
		if d < bestD || d == bestD && name < best {
			best, bestD = name, d
		}
	}
	limit := 2
	if len(up) <= 4 {
		limit = 1
	}
	if bestD > limit {
		return ""
	}
	return best
}

// editDistance is the optimal-string-alignment distance (adjacent transpositions
// count as one edit, so FORM is close to FROM).
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
