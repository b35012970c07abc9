// Package launchd is the macOS platform: each service becomes a launchd job
// (a property list written with howett.net/plist) in ~/Library/LaunchAgents
// (user) or /Library/LaunchDaemons (system), managed with `launchctl
// bootstrap`, `bootout` and `print`.
package launchd

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"howett.net/plist"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/spec"
)

// Artifact kinds this platform plants.
const (
	// KindPlist is a launchd job property list (0644: it holds no secret).
	KindPlist = "launchd-plist"
	// KindEnv is the 0600 file `orchd env-exec` reads the service's ENV from.
	KindEnv = "launchd-env"
)

// Job is the launchd job of one service, as written to its plist.
type Job struct {
	Label              string         `plist:"Label"`
	ProgramArguments   []string       `plist:"ProgramArguments"`
	WorkingDirectory   string         `plist:"WorkingDirectory,omitempty"`
	UserName           string         `plist:"UserName,omitempty"`
	RunAtLoad          bool           `plist:"RunAtLoad"`
	KeepAlive          any            `plist:"KeepAlive"` // bool, or {SuccessfulExit: false} for on-failure
	ThrottleInterval   int            `plist:"ThrottleInterval,omitempty"`
	ExitTimeOut        int            `plist:"ExitTimeOut,omitempty"`
	StandardOutPath    string         `plist:"StandardOutPath"`
	StandardErrorPath  string         `plist:"StandardErrorPath"`
	SoftResourceLimits map[string]int `plist:"SoftResourceLimits,omitempty"`
	HardResourceLimits map[string]int `plist:"HardResourceLimits,omitempty"`
	// Orchd marks the job as orchd's, with its namespace and service.
	Orchd map[string]string `plist:"X-Orchd,omitempty"`
}

// JobLabel is the launchd label of a service: orchd.<namespace>.<service>.
func JobLabel(namespace, service string) string { return "orchd." + namespace + "." + service }

// JobDir is where launchd reads the jobs of scope: the user's LaunchAgents
// or the system's LaunchDaemons.
func JobDir(scope, home string) string {
	if scope == "system" {
		return "/Library/LaunchDaemons"
	}
	return filepath.Join(home, "Library", "LaunchAgents")
}

func envFile(l contract.Layout, label string) string {
	return filepath.Join(l.RunDir(), label+".launchd.env")
}

// Plant implements platform.Platform: a plist per service, a 0600 env file
// when the service has ENV (launchd plists are world-readable, so ENV never
// goes into EnvironmentVariables), and the runtime's files. Pure.
func (p *Platform) Plant(c contract.Cuttings, scope string) (contract.Beds, error) {
	env := c.Env
	if env.StateDir == "" || env.Namespace == "" || !filepath.IsAbs(env.StateDir) {
		return contract.Beds{}, fmt.Errorf("plant: cuttings carry no absolute state dir or no namespace (env %+v)", env)
	}
	if env.Orchd == "" || !filepath.IsAbs(env.Orchd) {
		return contract.Beds{}, fmt.Errorf("plant: cuttings carry no absolute orchd path (env.orchd %q); produce them with `orchd sow`", env.Orchd)
	}
	if scope == "" {
		scope = p.scope
	}
	dir := p.jobDir
	if scope != p.scope {
		dir = JobDir(scope, p.home)
	}
	l := contract.Layout{StateDir: env.StateDir}
	return platform.PlantBeds(c, "launchd", scope, func(cut contract.Cutting, label string) ([]contract.Artifact, error) {
		svc := cut.Service
		var arts []contract.Artifact
		args := cut.Exec.Start
		// ENV_FILE files, then ENV (later wins), read by `orchd env-exec`
		// just before it execs the service.
		var files []string
		files = append(files, cut.Process.EnvFiles...)
		if len(cut.Process.Env) > 0 {
			text, err := envText(cut.Process.Env)
			if err != nil {
				return nil, err
			}
			path := envFile(l, label)
			files = append(files, path)
			arts = append(arts, contract.Artifact{Kind: KindEnv, Path: path, Content: text, Mode: 0o600})
		}
		if len(files) > 0 {
			wrap := []string{env.Orchd, "env-exec"}
			for _, f := range files {
				wrap = append(wrap, "--env-file", f)
			}
			args = append(append(wrap, "--"), args...)
		}
		job := Job{
			Label:             JobLabel(env.Namespace, svc.Name),
			ProgramArguments:  args,
			WorkingDirectory:  cut.Process.Dir,
			UserName:          cut.Process.User,
			RunAtLoad:         true,
			KeepAlive:         keepAlive(svc),
			ExitTimeOut:       seconds(svc.Timeouts.Stop, spec.DefaultTimeoutStop),
			StandardOutPath:   platform.LogPath(svc.Logging.Stdout, svc.Name, env, l.LogFile(label)),
			StandardErrorPath: platform.LogPath(svc.Logging.Stderr, svc.Name, env, l.LogFile(label)),
			Orchd:             map[string]string{"namespace": env.Namespace, "service": svc.Name},
		}
		if job.KeepAlive != false {
			job.ThrottleInterval = seconds(svc.Restart.Delay, spec.DefaultRestartDelay)
		}
		for _, rl := range cut.Process.Rlimits {
			key := map[string]string{"RLIMIT_NOFILE": "NumberOfFiles", "RLIMIT_NPROC": "NumberOfProcesses"}[rl.Type]
			if key == "" {
				return nil, fmt.Errorf("rlimit %s has no launchd key", rl.Type)
			}
			if job.SoftResourceLimits == nil {
				job.SoftResourceLimits, job.HardResourceLimits = map[string]int{}, map[string]int{}
			}
			job.SoftResourceLimits[key], job.HardResourceLimits[key] = int(rl.Soft), int(rl.Hard)
		}
		var b bytes.Buffer
		enc := plist.NewEncoderForFormat(&b, plist.XMLFormat)
		enc.Indent("\t")
		if err := enc.Encode(job); err != nil {
			return nil, err
		}
		arts = append(arts, contract.Artifact{Kind: KindPlist, Path: filepath.Join(dir, job.Label+".plist"), Content: b.String() + "\n", Mode: 0o644})
		return arts, nil
	})
}

// keepAlive maps RESTART: always restarts on any exit, on-failure only on a
// non-zero one, no (and every ONESHOT) never.
func keepAlive(svc spec.Service) any {
	if svc.Oneshot {
		return false
	}
	switch svc.Restart.Policy {
	case spec.RestartAlways:
		return true
	case spec.RestartOnFailure:
		return map[string]bool{"SuccessfulExit": false}
	}
	return false
}

func seconds(d, def spec.Duration) int { return int(d.Or(def) / time.Second) }

// envText renders ENV as the KEY=value lines `orchd env-exec` reads.
func envText(env map[string]string) (string, error) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if strings.ContainsAny(env[k], "\n\r") {
			return "", fmt.Errorf("ENV %s: a value with a line break cannot be passed through an env file", k)
		}
		fmt.Fprintf(&b, "%s=%s\n", k, env[k])
	}
	return b.String(), nil
}

// order is beds in REQUIRES/AFTER order: launchd has no dependencies, so
// tend bootstraps dependencies first.
func order(beds []contract.Bed) []contract.Bed {
	var out []contract.Bed
	done := map[string]bool{}
	byName := map[string]contract.Bed{}
	for _, b := range beds {
		byName[b.Service] = b
	}
	var visit func(b contract.Bed, depth int)
	visit = func(b contract.Bed, depth int) {
		if done[b.Service] || depth > len(beds) {
			return
		}
		for _, d := range slices.Concat(b.Requires, b.After) {
			if db, ok := byName[d]; ok {
				visit(db, depth+1)
			}
		}
		if !done[b.Service] {
			done[b.Service] = true
			out = append(out, b)
		}
	}
	for _, b := range beds {
		visit(b, 0)
	}
	return out
}
