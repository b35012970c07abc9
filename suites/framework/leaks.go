package framework

import (
	"context"
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"

	"github.com/orchd/orchd/harness/leaks"
)

// LeakTarget is what the leak inspector checks for one orchd namespace.
func (f *Framework) LeakTarget(namespace, stateDir string) leaks.Target {
	return leaks.Target{
		Address:       f.Daemon.Address,
		Namespace:     namespace,
		Root:          f.Daemon.Root,
		State:         f.Daemon.State,
		OrchdStateDir: stateDir,
	}
}

// ExpectNoLeaks runs the leak inspector (after a synchronous GC) and expects
// zero tasks, containers, snapshots, leases, ingests, shims, mounts, cgroups,
// runtime files and orchd processes for this spec's namespace.
func (s *Spec) ExpectNoLeaks(ctx context.Context) {
	GinkgoHelper()
	defer s.timing.since("leak inspection", time.Now())
	r, err := leaks.Inspect(ctx, s.fw.LeakTarget(s.Namespace, s.StateDir))
	Expect(err).NotTo(HaveOccurred(), "leak inspection of %s", s.Namespace)
	Expect(r.Empty()).To(BeTrue(), "namespace %s leaked %d objects:\n%s", s.Namespace, r.Count(), r.String())
}

// forceClean deletes whatever a namespace still holds (images included) and
// the namespace itself.
func (f *Framework) forceClean(ctx context.Context, ns, stateDir string) error {
	t := f.LeakTarget(ns, stateDir)
	t.CountImages = true
	var errs []error
	if err := leaks.Clean(ctx, t); err != nil {
		errs = append(errs, err)
	}
	c, err := client.New(f.Daemon.Address)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("connect %s: %w", f.Daemon.Address, err))...)
	}
	defer c.Close()
	if err := c.NamespaceService().Delete(namespaces.WithNamespace(ctx, ns), ns); err != nil && !isNotFound(err) {
		errs = append(errs, fmt.Errorf("delete namespace %s: %w", ns, err))
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool { return errdefs.IsNotFound(err) }
