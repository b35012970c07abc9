package supervise

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/envfile"
)

// procCtx is the resolved process context every command of a unit runs with.
type procCtx struct {
	dir        string
	env        []string
	cred       *cred
	rlimits    []contract.Rlimit
	cloneflags uintptr
	userns     bool
}

type cred struct {
	uid, gid uint32
	groups   []uint32
}

// resolveProcess builds the context from a unit's Process. It reads the
// ENV_FILE files, so it runs at every start: edited env files apply on restart.
// Environment precedence: the supervisor's own environment, then HOME/USER/
// LOGNAME of USER, then ENV_FILE files in order, then ENV.
func resolveProcess(p contract.Process) (procCtx, error) {
	pc := procCtx{dir: p.Dir, rlimits: p.Rlimits, cloneflags: cloneNewPID}
	if os.Geteuid() != 0 {
		// Unprivileged: a user namespace makes the PID namespace possible.
		pc.cloneflags |= cloneNewUser
		pc.userns = true
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != initEnv {
			env[k] = v
		}
	}
	if p.User != "" {
		u, err := lookupUser(p.User)
		if err != nil {
			return pc, err
		}
		c := &cred{}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			return pc, fmt.Errorf("user %s: non-numeric uid/gid %s/%s", p.User, u.Uid, u.Gid)
		}
		c.uid, c.gid = uint32(uid), uint32(gid)
		if gids, err := u.GroupIds(); err == nil {
			for _, g := range gids {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					c.groups = append(c.groups, uint32(n))
				}
			}
		}
		if pc.userns && int(c.uid) != os.Getuid() {
			return pc, fmt.Errorf("user %s: switching users needs root (orchd runs as uid %d)", p.User, os.Getuid())
		}
		pc.cred = c
		if u.HomeDir != "" {
			env["HOME"] = u.HomeDir
		}
		if u.Username != "" {
			env["USER"], env["LOGNAME"] = u.Username, u.Username
		}
	}
	for _, f := range p.EnvFiles {
		kv, err := envfile.Read(f)
		if err != nil {
			return pc, err
		}
		for k, v := range kv {
			env[k] = v
		}
	}
	for k, v := range p.Env {
		env[k] = v
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		pc.env = append(pc.env, k+"="+env[k])
	}
	if pc.dir != "" {
		if fi, err := os.Stat(pc.dir); err != nil {
			return pc, fmt.Errorf("workdir: %w", err)
		} else if !fi.IsDir() {
			return pc, fmt.Errorf("workdir %s: not a directory", pc.dir)
		}
	}
	return pc, nil
}

// lookupUser accepts a user name or a numeric uid. A uid without a passwd
// entry is allowed (gid = uid), as in container runtimes.
func lookupUser(name string) (*user.User, error) {
	if u, err := user.Lookup(name); err == nil {
		return u, nil
	}
	if _, err := strconv.ParseUint(name, 10, 32); err == nil {
		if u, err := user.LookupId(name); err == nil {
			return u, nil
		}
		return &user.User{Uid: name, Gid: name}, nil
	}
	return nil, fmt.Errorf("user %q: no such user in /etc/passwd", name)
}

// openLog opens a log path for appending, creating it 0600 with 0700 parents.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return f, nil
}
