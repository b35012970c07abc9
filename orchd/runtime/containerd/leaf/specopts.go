package leaf

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/orchd/orchd/orchd/container"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

// cfsPeriod is the CFS period CPUS and CPU_QUOTA are expressed against (100ms).
const cfsPeriod = 100000

// specOpts maps the service onto containerd's OCI spec helpers, on top of the
// image config (which also resolves the image's USER from its /etc/passwd).
func specOpts(rs *crd.RunSpec, img oci.Image, cfg ocispec.ImageConfig, cgroup cgroupHost, log *slog.Logger) ([]oci.SpecOpts, error) {
	svc := rs.Service
	opts := []oci.SpecOpts{
		withSpecVersion,
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

	args, err := container.Args(cfg, svc.Entrypoint, svc.Cmd)
	if err != nil {
		return nil, err
	}
	opts = append(opts, oci.WithProcessArgs(args...))

	files, err := container.ReadEnvFiles(rs.EnvFiles, rs.ProjectDir)
	if err != nil {
		return nil, err
	}
	if env := container.ServiceEnv(files, svc.Env); len(env) > 0 {
		opts = append(opts, oci.WithEnv(env))
	}

	if svc.Workdir != "" {
		opts = append(opts, oci.WithProcessCwd(container.Workdir(cfg.WorkingDir, svc.Workdir)))
	}

	vols, err := container.Volumes(svc.Volumes, rs.DataDir, rs.Namespace, rs.ProjectDir)
	if err != nil {
		return nil, err
	}
	if len(vols) > 0 {
		mounts := make([]specs.Mount, len(vols))
		for i, v := range vols {
			mounts[i] = specs.Mount{Type: "bind", Source: v.Source, Destination: v.Destination, Options: []string{"rbind", "rw"}}
		}
		opts = append(opts, oci.WithMounts(mounts))
	}

	res := svc.Resources
	n, err := res.MemoryBytes()
	if err != nil {
		return nil, err
	}
	if n > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(n)))
	}
	// CPU_QUOTA, the more explicit of the two, wins when both are set.
	switch {
	case res.CPUQuota != "":
		pct, err := res.CPUQuotaPercent()
		if err != nil {
			return nil, err
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
		opts = append(opts, crd.WithRlimit("RLIMIT_NOFILE", uint64(res.LimitNofile), uint64(res.LimitNofile)))
	}
	if res.LimitNproc > 0 {
		opts = append(opts, crd.WithRlimit("RLIMIT_NPROC", uint64(res.LimitNproc), uint64(res.LimitNproc)))
	}
	if res.IOWeight > 0 {
		if why := cgroup.ioWeightUnsupported(); why != "" {
			log.Warn("IO_WEIGHT not applied: "+why, "service", svc.Name, "io_weight", res.IOWeight)
		} else {
			opts = append(opts, crd.WithBlkioWeight(uint16(res.IOWeight)))
		}
	}
	return opts, nil
}

// SpecVersion is the runtime-spec version the leaf's container specs
// declare: they use nothing newer than 1.1 (namespaces, mounts, rlimits,
// cgroup resources, a cgroup namespace). The client library would write its
// own module's version (1.3.0), which runtimes that check the version
// strictly refuse: crun before 1.9 (Debian 12's 1.8.1) fails every create
// with "unknown version specified" for anything above 1.1.
const SpecVersion = "1.1.0"

func withSpecVersion(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	s.Version = SpecVersion
	return nil
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
type cgroupHost struct {
	root string
	// cfqWeightOnly: the OCI runtime writes a v1 weight only to CFQ's
	// blkio.weight (gVisor's runsc), never BFQ's blkio.bfq.weight as runc does.
	cfqWeightOnly bool
}

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
	if _, err := os.Stat(filepath.Join(blkio, "blkio.weight")); err == nil {
		return ""
	}
	if m, _ := filepath.Glob(filepath.Join(blkio, "blkio.bfq.*")); len(m) > 0 {
		if h.cfqWeightOnly {
			return "the host's cgroup v1 blkio weight is BFQ's blkio.bfq.weight, and the OCI runtime writes only CFQ's blkio.weight"
		}
		return ""
	}
	return "the host's cgroup v1 blkio controller has no weight (neither CFQ nor BFQ is loaded)"
}
