// Package registry serves the fixture images from an in-memory OCI registry
// on loopback, so the pull paths (containerd's Transfer service and the
// client-side pull) are exercised for real against plain HTTP.
//
// Pulling from it (all verified by the tests):
//
//	client.Pull(ctx, reg.Ref("probe"), client.WithResolver(
//		docker.NewResolver(docker.ResolverOptions{PlainHTTP: true})))     // 1.6 and 2.x
//	src, _ := transferregistry.NewOCIRegistry(ctx, ref, transferregistry.WithDefaultScheme("http"))
//	client.Transfer(ctx, src, image.NewStore(ref, image.WithUnpack(...)))  // 2.x Transfer service
//	ctr images pull --plain-http ADDR/probe:latest
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/orchd/orchd/harness/images"
)

// Registry is a running registry holding the fixture images.
type Registry struct {
	addr   string
	srv    *http.Server
	served chan error
	stop   context.CancelFunc

	mu    sync.Mutex
	names []string
}

// Serve listens on addr ("127.0.0.1:0" picks a free port), serves an
// in-memory registry and pushes each layout's image as <name>:latest. It
// returns once every push completed. Cancelling ctx closes the registry.
func Serve(ctx context.Context, addr string, layouts ...images.Layout) (*Registry, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("registry: listen %s: %w", addr, err)
	}
	handler := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	r := &Registry{
		addr:   ln.Addr().String(),
		srv:    &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second},
		served: make(chan error, 1),
	}
	go func() { r.served <- r.srv.Serve(ln) }()
	ctx, r.stop = context.WithCancel(ctx)
	go func() {
		<-ctx.Done()
		_ = r.srv.Close()
	}()
	for _, l := range layouts {
		if err := r.Push(ctx, l); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// Push uploads a layout's image as <layout name>:latest.
func (r *Registry) Push(ctx context.Context, l images.Layout) error {
	img, err := imageOf(l)
	if err != nil {
		return fmt.Errorf("registry: push %s: %w", l.Name, err)
	}
	ref, err := name.NewTag(r.Ref(l.Name), name.Insecure)
	if err != nil {
		return fmt.Errorf("registry: push %s: %w", l.Name, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("registry: push %s to %s: %w", l.Name, ref, err)
	}
	slog.Debug("registry: pushed", "image", l.Name, "ref", ref.String(), "digest", l.ManifestDigest)
	r.mu.Lock()
	r.names = append(r.names, l.Name)
	r.mu.Unlock()
	return nil
}

// imageOf opens the layout's manifest as an image; the raw manifest bytes are
// pushed unchanged, so the registry's digest equals the layout's.
func imageOf(l images.Layout) (v1.Image, error) {
	p, err := layout.FromPath(l.Dir)
	if err != nil {
		return nil, fmt.Errorf("open layout %s: %w", l.Dir, err)
	}
	h, err := v1.NewHash(l.ManifestDigest.String())
	if err != nil {
		return nil, fmt.Errorf("layout %s: manifest digest: %w", l.Dir, err)
	}
	img, err := p.Image(h)
	if err != nil {
		return nil, fmt.Errorf("layout %s: image %s: %w", l.Dir, h, err)
	}
	return img, nil
}

// Addr is the host:port the registry listens on.
func (r *Registry) Addr() string { return r.addr }

// Ref is the reference of a fixture image in this registry, e.g.
// "127.0.0.1:41234/probe:latest".
func (r *Registry) Ref(name string) string { return r.addr + "/" + name + ":latest" }

// Names lists the images pushed so far.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}

// Close stops serving; it is safe to call more than once.
func (r *Registry) Close() error {
	r.stop()
	err := <-r.served
	r.served <- err // later Close calls see the same result
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Wait blocks until the registry stops (ctx cancelled or Close).
func (r *Registry) Wait() error {
	err := <-r.served
	r.served <- err
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
