package framework

import (
	"context"
	"fmt"
	"os"
	"strings"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/orchd/orchd/fixtures/probe/report"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

// Container is what containerd itself holds for one service's container:
// the suites compare these, not orchd's own view (the leaf's pid or the
// container id orchd derives from the service name).
type Container struct {
	ID          string
	Snapshotter string
	SnapshotKey string
	// CgroupsPath is the OCI spec's linux.cgroupsPath.
	CgroupsPath string
	// TaskPid is the task's init pid (0: no task).
	TaskPid uint32
	// TaskCgroup is the task's cgroup as /proc/<pid>/cgroup shows it
	// (the memory controller's line on v1, the unified line on v2).
	TaskCgroup string
}

// Client dials the suite's containerd; the caller closes it.
func (f *Framework) Client() (*client.Client, error) {
	c, err := client.New(f.Daemon.Address)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", f.Daemon.Address, err)
	}
	return c, nil
}

// Container reads container id's record and task from containerd, in this
// spec's namespace. Errors are reported through g, for polling.
func (s *Spec) Container(ctx context.Context, g Gomega, id string) Container {
	c, err := s.fw.Client()
	g.Expect(err).NotTo(HaveOccurred())
	defer c.Close()
	nsctx := namespaces.WithNamespace(ctx, s.Namespace)
	ctr, err := c.LoadContainer(nsctx, id)
	g.Expect(err).NotTo(HaveOccurred(), "container %s in namespace %s", id, s.Namespace)
	rec, err := ctr.Info(nsctx)
	g.Expect(err).NotTo(HaveOccurred(), "container %s", id)
	out := Container{ID: id, Snapshotter: rec.Snapshotter, SnapshotKey: rec.SnapshotKey}
	sp, err := ctr.Spec(nsctx)
	g.Expect(err).NotTo(HaveOccurred(), "OCI spec of %s", id)
	if sp.Linux != nil {
		out.CgroupsPath = sp.Linux.CgroupsPath
	}
	task, err := ctr.Task(nsctx, nil)
	if errdefs.IsNotFound(err) {
		return out
	}
	g.Expect(err).NotTo(HaveOccurred(), "task of %s", id)
	out.TaskPid = task.Pid()
	out.TaskCgroup = procCgroup(g, out.TaskPid)
	return out
}

// procCgroup is pid's cgroup: the unified ("0::") line on v2, the memory
// controller's line on v1 (runc puts every controller at the same path).
func procCgroup(g Gomega, pid uint32) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	g.Expect(err).NotTo(HaveOccurred(), "cgroup of task pid %d", pid)
	var unified string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				return parts[2]
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
		}
	}
	g.Expect(unified).NotTo(BeEmpty(), "no memory or unified cgroup line for pid %d:\n%s", pid, b)
	return unified
}

// Flight is what containerd holds in a namespace while a container is
// being made: leases (orchd's create lease, the importer's), content ingests
// (a blob being written) and the containers that exist so far.
type Flight struct {
	Leases, Ingests, Containers int
}

// Importing is true while an image import is provably in flight: a blob is
// being written. A lease alone proves less: orchd holds one over the whole
// container creation, import or not.
func (f Flight) Importing() bool {
	return f.Ingests > 0
}

func (f Flight) String() string {
	return fmt.Sprintf("leases=%d ingests=%d containers=%d", f.Leases, f.Ingests, f.Containers)
}

// InFlight reads the spec namespace's leases, ingests and containers.
func (s *Spec) InFlight(ctx context.Context) (Flight, error) {
	c, err := s.fw.Client()
	if err != nil {
		return Flight{}, err
	}
	defer c.Close()
	nsctx := namespaces.WithNamespace(ctx, s.Namespace)
	ls, err := c.LeasesService().List(nsctx)
	if err != nil {
		return Flight{}, fmt.Errorf("list leases of %s: %w", s.Namespace, err)
	}
	st, err := c.ContentStore().ListStatuses(nsctx)
	if err != nil {
		return Flight{}, fmt.Errorf("list ingests of %s: %w", s.Namespace, err)
	}
	cs, err := c.ContainerService().List(nsctx)
	if err != nil {
		return Flight{}, fmt.Errorf("list containers of %s: %w", s.Namespace, err)
	}
	return Flight{Leases: len(ls), Ingests: len(st), Containers: len(cs)}, nil
}

// HostCgroup reads the limits of service svc's container from the host
// side: the cgroup the task's init is in, as this process sees it, through
// the same reader the probe uses inside. For a sandboxed runtime (gVisor)
// whose container sees the sandbox kernel's cgroups, not the host's.
func (s *Spec) HostCgroup(ctx context.Context, svc string) report.Cgroup {
	GinkgoHelper()
	c := s.Container(ctx, Default, crd.ContainerID(s.Namespace, svc))
	Expect(c.TaskPid).NotTo(BeZero(), "container of %s has no task", svc)
	entries, err := report.ReadFile(fmt.Sprintf("/proc/%d/cgroup", c.TaskPid), report.ParseProcCgroup)
	Expect(err).NotTo(HaveOccurred())
	mounts, err := report.ReadFile("/proc/self/mountinfo", report.ParseMountinfo)
	Expect(err).NotTo(HaveOccurred())
	cg, errs := report.ReadCgroup("/", entries, mounts)
	Expect(errs).To(BeEmpty(), "read the cgroup of task pid %d from the host", c.TaskPid)
	AddReportEntry("cgroup read from the host", fmt.Sprintf("task pid %d: %s", c.TaskPid, cg.Path))
	return cg
}
