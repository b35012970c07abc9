package vm

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/orchd/container"
	"github.com/orchd/orchd/orchd/runtime/healthcheck"
	"github.com/orchd/orchd/orchd/runtime/vm/guest"
	"github.com/orchd/orchd/orchd/spec"
)

// GuestInput is what the guest config is computed from; the leaf gathers it
// (image config, env files, the image's /etc/passwd and /etc/group).
type GuestInput struct {
	Image    ocispec.ImageConfig
	Service  spec.Service
	EnvFiles []map[string]string // ENV_FILE contents, in order (later wins)
	Passwd   []byte
	Group    []byte
	Modules  []string // guest paths, load order
	Volumes  []guest.Mount
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// GuestConfig merges the image config with the service's overrides: ENTRYPOINT
// and CMD as in Docker (a new ENTRYPOINT drops the image's CMD), env = image,
// then ENV_FILE, then ENV; WORKDIR relative to the image's; the image's USER
// resolved through its /etc/passwd and /etc/group.
func GuestConfig(in GuestInput) (guest.Config, error) {
	svc := in.Service
	argv, err := container.Args(in.Image, svc.Entrypoint, svc.Cmd)
	if err != nil {
		return guest.Config{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	env := container.MergeEnv(in.Image.Env, container.ServiceEnv(in.EnvFiles, svc.Env))
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
		env = append([]string{defaultPath}, env...)
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOSTNAME=") }) {
		env = append(env, "HOSTNAME="+svc.Name)
	}
	dir := container.Workdir(in.Image.WorkingDir, svc.Workdir)

	uid, gid, groups, err := resolveUser(in.Image.User, in.Passwd, in.Group)
	if err != nil {
		return guest.Config{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		// As container runtimes do: the user's home from passwd, else /root or /.
		home := passwdField(in.Passwd, strconv.Itoa(int(uid)), 2, 5)
		switch {
		case home != "":
		case uid == 0:
			home = "/root"
		default:
			home = "/"
		}
		env = append(env, "HOME="+home)
	}

	limits, err := GuestLimits(svc.Resources)
	if err != nil {
		return guest.Config{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	c := guest.Config{
		Argv: argv, Env: env, Dir: dir, UID: uid, GID: gid, Groups: groups,
		Hostname:    svc.Name,
		Volumes:     in.Volumes,
		Modules:     in.Modules,
		StopTimeout: svc.Timeouts.StopTimeout(),
		Cgroup2:     true,
		Limits:      limits,
		ExecInit:    in.Image.Labels[guest.InitLabel] == "exec",
	}
	if healthcheck.IsCommand(svc.Healthcheck) && !svc.Oneshot {
		if c.Healthcheck, err = healthcheck.Argv(strings.TrimSpace(svc.Healthcheck)); err != nil {
			return guest.Config{}, fmt.Errorf("service %s: %w", svc.Name, err)
		}
		c.HealthTimeout = healthcheck.Timeout
	}
	if len(svc.Publish) > 0 {
		n := guest.UserNet()
		c.Network = &n
	}
	return c, nil
}

// resolveUser maps an image USER ("name", "uid", "name:group", "uid:gid") to ids.
func resolveUser(u string, passwd, group []byte) (uid, gid uint32, groups []uint32, err error) {
	if u == "" {
		return 0, 0, nil, nil
	}
	name, grp, hasGroup := strings.Cut(u, ":")
	var ok bool
	if n, perr := strconv.ParseUint(name, 10, 32); perr == nil {
		uid = uint32(n)
		if g := passwdField(passwd, name, 2, 3); g != "" {
			v, _ := strconv.ParseUint(g, 10, 32)
			gid = uint32(v)
		} else {
			gid = uid
		}
	} else {
		line := passwdLine(passwd, name, 0)
		if line == nil {
			return 0, 0, nil, fmt.Errorf("user %q: not in the image's /etc/passwd", name)
		}
		v, _ := strconv.ParseUint(line[2], 10, 32)
		uid = uint32(v)
		v, _ = strconv.ParseUint(line[3], 10, 32)
		gid = uint32(v)
		ok = true
	}
	if hasGroup {
		if n, perr := strconv.ParseUint(grp, 10, 32); perr == nil {
			gid = uint32(n)
		} else {
			line := passwdLine(group, grp, 0)
			if line == nil || len(line) < 3 {
				return 0, 0, nil, fmt.Errorf("group %q: not in the image's /etc/group", grp)
			}
			v, _ := strconv.ParseUint(line[2], 10, 32)
			gid = uint32(v)
		}
	}
	// Supplementary groups: every group listing the user by name.
	userName := name
	if !ok {
		userName = passwdField(passwd, name, 2, 0)
	}
	if userName != "" {
		sc := bufio.NewScanner(bytes.NewReader(group))
		for sc.Scan() {
			f := strings.Split(sc.Text(), ":")
			if len(f) < 4 {
				continue
			}
			if slices.Contains(strings.Split(f[3], ","), userName) {
				if v, err := strconv.ParseUint(f[2], 10, 32); err == nil && uint32(v) != gid {
					groups = append(groups, uint32(v))
				}
			}
		}
	}
	return uid, gid, groups, nil
}

// passwdLine returns the fields of the first line whose field key equals v.
func passwdLine(db []byte, v string, key int) []string {
	sc := bufio.NewScanner(bytes.NewReader(db))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, ":")
		if len(f) > key && len(f) >= 4 && f[key] == v {
			return f
		}
	}
	return nil
}

// passwdField returns field want of the line whose field key equals v.
func passwdField(db []byte, v string, key, want int) string {
	f := passwdLine(db, v, key)
	if f == nil || len(f) <= want {
		return ""
	}
	return f[want]
}
