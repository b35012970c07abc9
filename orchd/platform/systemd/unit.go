package systemd

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

// Artifact kinds this platform plants.
const (
	// KindUnit is a systemd service unit (world-readable: it holds no secret).
	KindUnit = "systemd-unit"
	// KindEnv is a 0600 EnvironmentFile= with the service's ENV values.
	KindEnv = "systemd-env"
)

// Keys in [Unit] that mark a unit as orchd's: systemd ignores X- keys, and
// survey and fell trust them rather than the name alone (the names of
// namespace "a" service "b-c" and namespace "a-b" service "c" collide).
const (
	keyNamespace = "X-Orchd-Namespace"
	keyService   = "X-Orchd-Service"
	// keyHealth marks a unit whose readiness a HEALTHCHECK gates, so
	// survey reports a HEALTH for it.
	keyHealth = "X-Orchd-Health"
)

// UnitName is the unit of a service: orch-<namespace>-<service>.service.
func UnitName(namespace, service string) string {
	return "orch-" + namespace + "-" + service + ".service"
}

// UnitDir is where the manager of scope reads units orchd installs: the
// user manager's ~/.config/systemd/user ($XDG_CONFIG_HOME honoured), the
// system manager's /etc/systemd/system. home and xdgConfig come from the
// caller so that plant stays a pure function of its input.
func UnitDir(scope, home, xdgConfig string) string {
	if scope == "system" {
		return "/etc/systemd/system"
	}
	if xdgConfig == "" {
		xdgConfig = filepath.Join(home, ".config")
	}
	return filepath.Join(xdgConfig, "systemd", "user")
}

// envFile is the 0600 EnvironmentFile of a service, beside the runtime's spec files.
func envFile(l contract.Layout, label string) string {
	return filepath.Join(l.RunDir(), label+".env")
}

// unitFile renders the unit text for one cutting. It never holds an ENV value:
// those go to the 0600 env file the unit names.
type unitFile struct {
	b strings.Builder
}

func (u *unitFile) section(name string) {
	if u.b.Len() > 0 {
		u.b.WriteByte('\n')
	}
	fmt.Fprintf(&u.b, "[%s]\n", name)
}

func (u *unitFile) set(key, value string) {
	if value != "" {
		fmt.Fprintf(&u.b, "%s=%s\n", key, value)
	}
}

func (u *unitFile) exec(key string, argv []string) {
	if len(argv) > 0 {
		u.set(key, quoteArgv(argv))
	}
}

// leafStopMargin is the time a leaf gets, past TIMEOUT_STOP, to tear its
// container down before systemd kills it.
const leafStopMargin = 30 * time.Second

// render is the whole unit; deps maps a service name to its unit name (only
// services planted in the same Cuttings).
func render(env contract.Env, orchd string, cut contract.Cutting, logs [2]string, envPath string) (string, error) {
	svc := cut.Service
	ns := env.Namespace
	var u unitFile
	u.b.WriteString("# Planted by orchd; `orchd fell` stops and removes it.\n")
	u.section("Unit")
	u.set("Description", fmt.Sprintf("orchd %s/%s", ns, svc.Name))
	u.set(keyNamespace, ns)
	u.set(keyService, svc.Name)
	hc := strings.TrimSpace(svc.Healthcheck)
	if hc != "" && !svc.Oneshot {
		u.set(keyHealth, "gated")
	}
	units := func(names []string) string {
		var out []string
		for _, n := range names {
			out = append(out, UnitName(ns, n))
		}
		return strings.Join(out, " ")
	}
	// REQUIRES: start together and wait for the dependency's start job, which
	// ends only when it is ready (health-gated) or, for a oneshot, completed.
	u.set("Requires", units(svc.Requires))
	u.set("After", units(append(append([]string(nil), svc.Requires...), svc.After...)))
	r := svc.Restart
	if !svc.Oneshot && r.Policy != spec.RestartNo && r.Policy != "" {
		burst := r.StartLimitBurst
		if burst <= 0 {
			burst = spec.DefaultStartLimitBurst
		}
		// START_LIMIT_BURST counts restarts, systemd counts starts: the
		// first start is one more.
		u.set("StartLimitBurst", strconv.Itoa(burst+1))
		u.set("StartLimitIntervalSec", secs(r.StartLimitInterval, spec.DefaultStartLimitInterval))
	}

	u.section("Service")
	readiness := svc.ReadinessTimeout
	if readiness == "" {
		readiness = spec.DefaultReadinessTimeout
	}
	start := cut.Exec.Start
	notify, leafHealth := leafNotify(cut.Exec)
	switch {
	case svc.Oneshot:
		u.set("Type", "oneshot")
		u.set("RemainAfterExit", "yes")
	case notify:
		// The leaf says READY=1 once its task runs. It runs under
		// `orchd notify-relay`, which stays the main process (so systemd
		// sees the leaf's exit code) and passes READY=1 on only when the
		// HEALTHCHECK passes.
		u.set("Type", "notify")
		u.set("NotifyAccess", "all")
		relay := []string{orchd, "notify-relay"}
		if hc != "" {
			relay = append(relay, "--healthcheck", hc, "--readiness-timeout", string(readiness))
			if leafHealth {
				relay = append(relay, "--leaf-health")
			}
		}
		start = append(append(relay, "--"), start...)
	default:
		// exec: the start job fails when the command cannot be executed.
		u.set("Type", "exec")
	}
	u.exec("ExecStartPre", cut.Exec.PreStart)
	u.exec("ExecStart", start)
	if hc != "" && !svc.Oneshot && !notify {
		// HEALTHCHECK gates readiness: the start job (which REQUIRES
		// dependents wait for) ends only when the check passes. It runs
		// with the service's user, environment and directory.
		u.exec("ExecStartPost", []string{orchd, "health-wait", "--readiness-timeout", string(readiness), "--", hc})
	}
	u.exec("ExecReload", cut.Exec.Reload)
	u.exec("ExecStop", cut.Exec.Stop)
	u.exec("ExecStopPost", cut.Exec.PostStop)
	policy := "no"
	if !svc.Oneshot {
		switch r.Policy {
		case spec.RestartAlways:
			policy = "always"
		case spec.RestartOnFailure:
			policy = "on-failure"
		}
	}
	u.set("Restart", policy)
	if policy == "no" && !svc.Oneshot {
		// A service that ends on its own stays "active (exited)" with its
		// exit status, rather than being unloaded by systemd's garbage
		// collection, so survey can still report how it ended.
		u.set("RemainAfterExit", "yes")
	}
	if policy != "no" {
		u.set("RestartSec", secs(r.Delay, spec.DefaultRestartDelay))
	}
	startTimeout := svc.Timeouts.Start
	if startTimeout == "" {
		startTimeout = spec.DefaultTimeoutStart
	}
	if hc != "" && !svc.Oneshot && readiness.Std(0) > startTimeout.Std(0) {
		// The start job includes the wait for health.
		startTimeout = readiness
	}
	u.set("TimeoutStartSec", secs(startTimeout, spec.DefaultTimeoutStart))
	stop := svc.Timeouts.Stop.Or(spec.DefaultTimeoutStop)
	if notify {
		// A leaf enforces TIMEOUT_STOP on its task itself, then deletes the
		// task, container and snapshot; systemd's SIGKILL is the backstop
		// and must not cut that cleanup short.
		stop += leafStopMargin
	}
	u.set("TimeoutStopSec", strconv.FormatInt(int64(stop/time.Second), 10))

	p := cut.Process
	u.set("User", p.User)
	u.set("WorkingDirectory", quoteValue(p.Dir))
	// ENV_FILE files first, the service's ENV after: later files win, as ENV
	// overrides ENV_FILE on orchdi.
	for _, f := range p.EnvFiles {
		u.set("EnvironmentFile", quoteValue(f))
	}
	if envPath != "" {
		u.set("EnvironmentFile", quoteValue(envPath))
	}
	for _, rl := range p.Rlimits {
		switch rl.Type {
		case "RLIMIT_NOFILE":
			u.set("LimitNOFILE", fmt.Sprintf("%d:%d", rl.Soft, rl.Hard))
		case "RLIMIT_NPROC":
			u.set("LimitNPROC", fmt.Sprintf("%d:%d", rl.Soft, rl.Hard))
		default:
			return "", fmt.Errorf("rlimit %s has no systemd directive", rl.Type)
		}
	}
	if res := p.Resources; res != nil {
		n, err := res.MemoryBytes()
		if err != nil {
			return "", err
		}
		if n > 0 {
			u.set("MemoryMax", strconv.FormatInt(n, 10))
		}
		switch {
		case res.CPUs != nil && *res.CPUs > 0:
			// CPUS wins over CPU_QUOTA, as on orchdi.
			u.set("CPUQuota", strconv.FormatFloat(*res.CPUs*100, 'f', -1, 64)+"%")
		case res.CPUQuota != "":
			pct, err := res.CPUQuotaPercent()
			if err != nil {
				return "", err
			}
			u.set("CPUQuota", strconv.Itoa(pct)+"%")
		}
		if res.TasksMax > 0 {
			u.set("TasksMax", strconv.FormatInt(res.TasksMax, 10))
		}
		if res.IOWeight > 0 {
			u.set("IOWeight", strconv.Itoa(res.IOWeight))
		}
	}
	u.set("StandardOutput", "append:"+quoteValue(logs[0]))
	u.set("StandardError", "append:"+quoteValue(logs[1]))
	return u.b.String(), nil
}

// secs renders a spec duration as systemd seconds.
func secs(d, def spec.Duration) string {
	return strconv.FormatInt(int64(d.Or(def)/time.Second), 10)
}

// quoteArgv renders a command line for Exec*=: every word double-quoted,
// with systemd's escapes, so spaces, quotes, `$` (no variable expansion) and
// `%` (no specifiers) reach the program verbatim.
func quoteArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = `"` + escape(a, true) + `"`
	}
	return strings.Join(out, " ")
}

// quoteValue escapes a path-like value: specifiers only (systemd does not
// unquote these settings).
func quoteValue(s string) string { return strings.ReplaceAll(s, "%", "%%") }

func escape(s string, exec bool) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '%':
			b.WriteString("%%")
		case '$':
			if exec {
				b.WriteString("$$")
			} else {
				b.WriteRune(r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// envText renders ENV for an EnvironmentFile=: KEY="value" lines with the
// escapes systemd's parser undoes (\\, \", \$, \` and newlines kept as is).
func envText(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		v := env[k]
		v = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`").Replace(v)
		fmt.Fprintf(&b, "%s=\"%s\"\n", k, v)
	}
	return b.String()
}

// leafNotify says whether Start speaks sd_notify (READY=1 once its task
// runs) and whether it reports the in-place HEALTHCHECK itself.
func leafNotify(e contract.Exec) (notify, health bool) { return e.Notify, e.NotifyHealth }
