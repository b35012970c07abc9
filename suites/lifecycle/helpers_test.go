package lifecycle

import (
	"context"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/runtime/containerd"
	"github.com/orchd/orchd/suites/framework"
)

// ctrd connects to the suite's containerd in the spec's namespace.
func ctrd(ctx context.Context, s *framework.Spec) (*client.Client, context.Context) {
	GinkgoHelper()
	c, err := client.New(fw.Daemon.Address)
	Expect(err).NotTo(HaveOccurred(), "connect %s", fw.Daemon.Address)
	DeferCleanup(c.Close)
	return c, namespaces.WithNamespace(ctx, s.Namespace)
}

// createdAt is containerd's creation time of svc's container.
func createdAt(ctx context.Context, c *client.Client, s *framework.Spec, svc string) time.Time {
	GinkgoHelper()
	ctr, err := c.LoadContainer(ctx, containerd.ContainerID(s.Namespace, svc))
	Expect(err).NotTo(HaveOccurred(), "container of %s", svc)
	info, err := ctr.Info(ctx, client.WithoutRefreshedMetadata)
	Expect(err).NotTo(HaveOccurred())
	return info.CreatedAt
}

// taskPid is containerd's pid of svc's task (0 when it has none).
func taskPid(ctx context.Context, c *client.Client, s *framework.Spec, svc string) uint32 {
	ctr, err := c.LoadContainer(ctx, containerd.ContainerID(s.Namespace, svc))
	if err != nil {
		return 0
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return 0
	}
	return task.Pid()
}
