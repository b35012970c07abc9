package leaf

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/shlex"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/envfile"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/orchd/spec"
)

// cfsPeriod is the CFS period CPUS and CPU_QUOTA are expressed against (100ms).
const cfsPeriod = 100000

// specOpts maps the service onto containerd's OCI spec helpers, on top of the
// image config (which also resolves the image's USER from its /etc/passwd).
func specOpts(rs *crd.RunSpec, img oci.Image, cfg ocispec.ImageConfig, cgroup cgroupHost, log *slog.Logger) ([]oci.SpecOpts, error) {
	svc := rs.Service
	opts := []oci.SpecOpts{
		oci.WithImageConfig(img),
		oci.WithHostname(svc.Name),
		// Host network: no CNI, no iptables; PUBLISH maps ports by relaying.
		oci.WithHostNamespace(specs.NetworkNamespace),
		oci.WithHostHostsFile,
		oci.WithHostResolvconf,
		// The container sees its own cgroup read-only at /sys/fs/cgroup, as
		// under Docker: runtimes (JVM, Go, .NET) size themselves from it.
		withCgroupMount(cgroup.unified()),
	}

	var entry, cmd []string
	var err error
	if svc.Entrypoint != "" {
		if entry, err = shlex.Split(svc.Entrypoint); err != nil {
			return nil, fmt.Errorf("ENTRYPOINT %q: %w", svc.Entrypoint, err)
		}
		entry = nonNil(entry)
	}
	if svc.Cmd != "" {
		if cmd, err = shlex.Split(svc.Cmd); err != nil {
			return nil, fmt.Errorf("CMD %q: %w", svc.Cmd, err)
		}
		cmd = nonNil(cmd)
	}
	args, err := imageArgs(cfg, entry, cmd)
	if err != nil {
		return nil, err
	}
	opts = append(opts, oci.WithProcessArgs(args...))

	env, err := serviceEnv(rs)
	if err != nil {
		return nil, err
	}
	if len(env) > 0 {
		opts = append(opts, oci.WithEnv(env))
	}

	if w := svc.Workdir; w != "" {
		if !path.IsAbs(w) {
			// Inside the container a relative WORKDIR is relative to the image's.
			base := cfg.WorkingDir
			if base == "" {
				base = "/"
			}
			w = path.Join(base, w)
		}
		opts = append(opts, oci.WithProcessCwd(w))
	}

	mounts, err := volumeMounts(rs)
	if err != nil {
		return nil, err
	}
	if len(mounts) > 0 {
		opts = append(opts, oci.WithMounts(mounts))
	}

	res := svc.Resources
	if res.Memory != "" {
		n, err := spec.ParseSize(res.Memory)
		if err != nil {
			return nil, fmt.Errorf("MEMORY: %w", err)
		}
		opts = append(opts, oci.WithMemoryLimit(uint64(n)))
	}
	// CPU_QUOTA, the more explicit of the two, wins when both are set.
	switch {
	case res.CPUQuota != "":
		pct, err := spec.ParseCPUQuota(res.CPUQuota)
		if err != nil {
			return nil, fmt.Errorf("CPU_QUOTA: %w", err)
		}
		opts = append(opts, oci.WithCPUCFS(int64(pct)*cfsPeriod/100, cfsPeriod))
	case res.CPUs != nil && *res.CPUs > 0:
		opts = append(opts, oci.WithCPUCFS(int64(*res.CPUs*cfsPeriod+0.5), cfsPeriod))
	}
	switch {
	case res.TasksMax > 0:
		opts = append(opts, oci.WithPidsLimit(res.TasksMax))
	case res.LimitNproc > 0:
		opts = append(opts, oci.WithPidsLimit(res.LimitNproc))
	}
	if res.LimitNofile > 0 {
		opts = append(opts, withRlimit("RLIMIT_NOFILE", uint64(res.LimitNofile)))
	}
	if res.LimitNproc > 0 {
		opts = append(opts, withRlimit("RLIMIT_NPROC", uint64(res.LimitNproc)))
	}
	if res.IOWeight > 0 {
		if why := cgroup.ioWeightUnsupported(); why != "" {
			log.Warn("IO_WEIGHT not applied: "+why, "service", svc.Name, "io_weight", res.IOWeight)
		} else {
			opts = append(opts, withBlkioWeight(uint16(res.IOWeight)))
		}
	}
	return opts, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// serviceEnv is ENV_FILE (in order, later files win) then ENV, as KEY=value.
func serviceEnv(rs *crd.RunSpec) ([]string, error) {
	merged := map[string]string{}
	for _, f := range rs.EnvFiles {
		m, err := envfile.Read(f)
		if err != nil {
			return nil, err
		}
		maps.Copy(merged, m)
	}
	maps.Copy(merged, rs.Service.Env)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(merged)) {
		out = append(out, k+"="+merged[k])
	}
	return out, nil
}

// volumeMounts binds VOLUME sources read-write. Named volumes are directories
// under <data>/volumes/<namespace>, created 0700 on first use; host paths must exist.
func volumeMounts(rs *crd.RunSpec) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, v := range rs.Service.Volumes {
		src := v.Source
		switch {
		case v.IsNamed:
			if rs.DataDir == "" {
				return nil, fmt.Errorf("VOLUME %s:%s: a named volume needs a data dir", v.Source, v.Destination)
			}
			src = contract.NamedVolume(rs.DataDir, rs.Namespace, v.Source)
			if err := os.MkdirAll(src, 0o700); err != nil {
				return nil, fmt.Errorf("VOLUME %s:%s: create %s: %w", v.Source, v.Destination, src, err)
			}
		case !filepath.IsAbs(src):
			src = filepath.Join(rs.ProjectDir, src)
			fallthrough
		default:
			if _, err := os.Stat(src); err != nil {
				return nil, fmt.Errorf("VOLUME %s:%s: source %s must exist (create it, or use a named volume such as data:%s): %w", v.Source, v.Destination, src, v.Destination, err)
			}
		}
		if !path.IsAbs(v.Destination) {
			return nil, fmt.Errorf("VOLUME %s:%s: the destination must be an absolute path", v.Source, v.Destination)
		}
		out = append(out, specs.Mount{Type: "bind", Source: src, Destination: v.Destination, Options: []string{"rbind", "rw"}})
	}
	return out, nil
}

// withRlimit sets one rlimit (soft = hard), replacing the default spec's value.
func withRlimit(typ string, v uint64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		rl := specs.POSIXRlimit{Type: typ, Soft: v, Hard: v}
		for i := range s.Process.Rlimits {
			if s.Process.Rlimits[i].Type == typ {
				s.Process.Rlimits[i] = rl
				return nil
			}
		}
		s.Process.Rlimits = append(s.Process.Rlimits, rl)
		return nil
	}
}

// withBlkioWeight sets the block IO weight; runc writes it to blkio.weight
// (v1) or io.weight / io.bfq.weight (v2).
func withBlkioWeight(w uint16) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.BlockIO == nil {
			s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{}
		}
		s.Linux.Resources.BlockIO.Weight = &w
		return nil
	}
}

// withCgroupMount mounts the container's cgroup read-only at /sys/fs/cgroup.
// On cgroup v2 it also gives the container its own cgroup namespace so the
// mount's root is the container's cgroup.
func withCgroupMount(unified bool) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		for _, m := range s.Mounts {
			if m.Destination == "/sys/fs/cgroup" {
				return nil
			}
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}})
		if unified {
			if s.Linux == nil {
				s.Linux = &specs.Linux{}
			}
			for _, ns := range s.Linux.Namespaces {
				if ns.Type == specs.CgroupNamespace {
					return nil
				}
			}
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
		return nil
	}
}

// cgroupHost describes the host's cgroup filesystem, for limits runc would
// otherwise fail on.
type cgroupHost struct{ root string }

func (h cgroupHost) dir() string {
	if h.root == "" {
		return "/sys/fs/cgroup"
	}
	return h.root
}

// unified reports whether the host runs cgroup v2 only.
func (h cgroupHost) unified() bool {
	_, err := os.Stat(filepath.Join(h.dir(), "cgroup.controllers"))
	return err == nil
}

// ioWeightUnsupported says why the host cannot take an IO weight ("" = it can).
func (h cgroupHost) ioWeightUnsupported() string {
	root := h.dir()
	if b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers")); err == nil {
		if slices.Contains(strings.Fields(string(b)), "io") {
			return ""
		}
		return "the cgroup v2 io controller is not enabled"
	}
	// Weight files are not shown on the root cgroup: blkio.weight comes with
	// CFQ; with BFQ, any blkio.bfq.* file on the root means child cgroups
	// (the container's) have blkio.bfq.weight, which runc then writes.
	blkio := filepath.Join(root, "blkio")
	for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
		if _, err := os.Stat(filepath.Join(blkio, f)); err == nil {
			return ""
		}
	}
	if m, _ := filepath.Glob(filepath.Join(blkio, "blkio.bfq.*")); len(m) > 0 {
		return ""
	}
	return "the host's cgroup v1 blkio controller has no weight (neither CFQ nor BFQ is loaded)"
}
