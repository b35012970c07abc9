package leaf

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
)

// A start's reads are independent of each other: whether the image is
// present and unpacked, its config and the spec options built from it need
// nothing from the container lookup and the start-time clean-up. Done one
// after another they are a chain of round trips, each waiting behind every
// other leaf starting at the same time; prepare runs the image half beside
// the other, so only the lease and the create itself are left in a row.

// prepared is the image half of a fresh container's creation.
type prepared struct {
	img   client.Image
	sopts []oci.SpecOpts
	// ok is false when the image is not present and unpacked: create then
	// gets it under the grove's image lock and the lease (see image).
	ok  bool
	err error
}

// preparation is a prepare running in the background.
type preparation struct {
	done   chan struct{}
	cancel context.CancelFunc
	res    prepared
}

// prepare starts looking up the service's image and building the spec
// options from it. wait returns the result; stop abandons it (a reused
// container needs neither).
func (l *leaf) prepare(ctx context.Context) *preparation {
	ctx, cancel := context.WithCancel(ctx)
	p := &preparation{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		g := l.getter()
		img, ok := g.ready(ctx, l.rs.Service.Image)
		if !ok {
			return
		}
		sopts, err := l.specFor(ctx, img)
		p.res = prepared{img: img, sopts: sopts, ok: err == nil, err: err}
	}()
	return p
}

func (p *preparation) wait() prepared {
	<-p.done
	p.cancel()
	return p.res
}

func (p *preparation) stop() {
	p.cancel()
	<-p.done
}

// getter is the leaf's image getter.
func (l *leaf) getter() *imageGetter {
	return &imageGetter{c: l.client(), snapshotter: l.snapshotter, projectDir: l.rs.ProjectDir,
		labels: labelsOf(l.rs), log: l.log}
}

// specFor reads img's config and builds the service's spec options from it.
func (l *leaf) specFor(ctx context.Context, img client.Image) ([]oci.SpecOpts, error) {
	ispec, err := img.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %s: read config: %w", img.Name(), err)
	}
	sopts, err := specOpts(l.rs, img, ispec.Config, cgroupHost{root: l.opts.CgroupRoot, cfqWeightOnly: filepath.Base(l.rs.OCIRuntime) == "runsc"}, l.log)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", l.rs.Service.Name, err)
	}
	return sopts, nil
}

// leaseStart is the create lease, made beside the start-time clean-up (which
// spares it: crd.KeepLease) instead of after it.
type leaseStart struct {
	id      string
	done    chan struct{}
	ctx     context.Context
	release func(context.Context) error
	err     error
}

// startLease starts creating the labeled, expiring lease the container is
// created under; its id is chosen here so the clean-up can spare it.
func (l *leaf) startLease(ctx context.Context) *leaseStart {
	var pick leases.Lease
	leases.WithRandomID()(&pick)
	ls := &leaseStart{id: pick.ID, done: make(chan struct{})}
	go func() {
		defer close(ls.done)
		ls.ctx, ls.release, ls.err = l.client().WithLease(ctx, leases.WithID(ls.id),
			leases.WithExpiration(leaseExpiry), leases.WithLabels(labelsOf(l.rs)))
		if ls.err != nil {
			ls.err = fmt.Errorf("create lease: %w", ls.err)
		}
	}()
	return ls
}

// wait returns the lease's context and its release.
func (ls *leaseStart) wait() (context.Context, func(context.Context) error, error) {
	<-ls.done
	return ls.ctx, ls.release, ls.err
}

// drop releases the lease of a start that ends before its create.
func (l *leaf) drop(ls *leaseStart) {
	if _, release, err := ls.wait(); err == nil {
		l.releaseLease(release)
	}
}

// releaseLease releases a create lease on a context of its own: a cancelled
// start still releases it.
func (l *leaf) releaseLease(release func(context.Context) error) {
	ctx, cancel := l.cleanupCtx()
	defer cancel()
	if err := release(ctx); err != nil && !errdefs.IsNotFound(err) {
		l.log.Warn("release lease", "err", err)
	}
}
