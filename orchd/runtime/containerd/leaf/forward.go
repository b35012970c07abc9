package leaf

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/orchd/orchd/orchd/spec"
)

// forwarder relays PUBLISH ports whose host and container sides differ. The
// container shares the host network namespace, so its port is on loopback.
type forwarder struct {
	log       *slog.Logger
	listeners []net.Listener
	targets   []string
	wg        sync.WaitGroup
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
}

// listen binds every host port first, so a taken port fails the start before
// the container runs.
func listen(pubs []spec.Publish, log *slog.Logger) (*forwarder, error) {
	f := &forwarder{log: log, conns: map[net.Conn]struct{}{}}
	for _, p := range pubs {
		if p.Host == p.Container {
			continue // same port in the host netns: nothing to relay
		}
		addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.Host))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("PUBLISH %s -> %d: %w", addr, p.Container, err)
		}
		f.listeners = append(f.listeners, l)
		f.targets = append(f.targets, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Container)))
	}
	return f, nil
}

func (f *forwarder) serve() {
	for i, l := range f.listeners {
		f.wg.Add(1)
		go f.accept(l, f.targets[i])
	}
}

func (f *forwarder) accept(l net.Listener, target string) {
	defer f.wg.Done()
	for {
		in, err := l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				f.log.Warn("forwarder accept", "listen", l.Addr().String(), "err", err)
			}
			return
		}
		f.wg.Add(1)
		go f.relay(in, target)
	}
}

func (f *forwarder) relay(in net.Conn, target string) {
	defer f.wg.Done()
	var d net.Dialer
	out, err := d.DialContext(context.Background(), "tcp", target)
	if err != nil {
		f.log.Debug("forwarder dial", "target", target, "err", err)
		in.Close()
		return
	}
	if !f.track(in, out) {
		return
	}
	defer f.untrack(in, out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}

func (f *forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conns == nil { // closed
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(f.conns, c)
	}
}

// close stops accepting, drops live connections and waits for the relays.
func (f *forwarder) close() {
	for _, l := range f.listeners {
		l.Close()
	}
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.conns = nil
	f.mu.Unlock()
	f.wg.Wait()
}
