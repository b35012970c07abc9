package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/typeurl/v2"
)

const syncTopic = "/orchd-bench/sync"

// watch counts task starts and records task exits in one namespace from
// containerd's event stream, so every contender is timed the same way (to the
// moment containerd reports the Nth task started) without polling the daemon.
type watch struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	starts  []time.Time   // containerd's timestamps of /tasks/start
	exits   map[string]time.Time
	exitSeq []time.Time // every init exit, in order (a restarting service exits repeatedly)
	synced  map[string]bool
	err     error
	cancel  context.CancelFunc
}

// watchNS subscribes and returns once the subscription is live: it publishes
// a marker event and waits to receive it, so no start is missed.
func (r *runner) watchNS(ctx context.Context, ns string) (*watch, error) {
	ctx, cancel := context.WithCancel(namespaces.WithNamespace(ctx, ns))
	w := &watch{changed: make(chan struct{}), exits: map[string]time.Time{}, synced: map[string]bool{}, cancel: cancel}
	ch, errs := r.client.Subscribe(ctx,
		fmt.Sprintf(`namespace==%q,topic=="/tasks/start"`, ns),
		fmt.Sprintf(`namespace==%q,topic=="/tasks/exit"`, ns),
		fmt.Sprintf(`namespace==%q,topic==%q`, ns, syncTopic))
	go func() {
		for {
			select {
			case e := <-ch:
				w.record(e.Topic, e.Timestamp, e.Event)
			case err := <-errs:
				w.mu.Lock()
				if err == nil {
					err = context.Canceled
				}
				w.err = err
				close(w.changed)
				w.changed = make(chan struct{})
				w.mu.Unlock()
				return
			}
		}
	}()
	// The subscription is made asynchronously; retry the marker until one arrives.
	marker := strconv.Itoa(r.next())
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := r.client.EventService().Publish(ctx, syncTopic, &apievents.NamespaceCreate{Name: marker}); err != nil {
			cancel()
			return nil, fmt.Errorf("events: publish marker: %w", err)
		}
		err := w.until(ctx, time.Now().Add(200*time.Millisecond), func() bool { return w.synced[marker] })
		if err == nil {
			return w, nil
		}
		if time.Now().After(deadline) {
			cancel()
			return nil, fmt.Errorf("events: subscription to %s never delivered: %w", ns, err)
		}
	}
}

func (w *watch) close() { w.cancel() }

func (w *watch) record(topic string, ts time.Time, ev typeurl.Any) {
	v, err := typeurl.UnmarshalAny(ev)
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch e := v.(type) {
	case *apievents.TaskStart:
		w.starts = append(w.starts, ts)
	case *apievents.TaskExit:
		if e.ID == e.ContainerID { // the init process, not an exec
			w.exits[e.ContainerID] = ts
			w.exitSeq = append(w.exitSeq, ts)
		}
	case *apievents.NamespaceCreate:
		if topic == syncTopic {
			w.synced[e.Name] = true
		}
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// until waits for cond (evaluated under the lock) or the deadline.
func (w *watch) until(ctx context.Context, deadline time.Time, cond func() bool) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		w.mu.Lock()
		ok, err, changed := cond(), w.err, w.changed
		w.mu.Unlock()
		if ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("event stream: %w", err)
		}
		select {
		case <-changed:
		case <-timer.C:
			return fmt.Errorf("timed out")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitStarts waits until n tasks started after mark (an index from count).
func (w *watch) waitStarts(ctx context.Context, mark, n int, timeout time.Duration) error {
	err := w.until(ctx, time.Now().Add(timeout), func() bool { return len(w.starts)-mark >= n })
	if err != nil {
		w.mu.Lock()
		got := len(w.starts) - mark
		w.mu.Unlock()
		return fmt.Errorf("waiting for %d task starts (%d seen): %w", n, got, err)
	}
	return nil
}

func (w *watch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.starts)
}

// startTimes returns containerd's timestamps of the starts since mark.
func (w *watch) startTimes(mark int) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.starts[mark:]...)
}

// waitExit waits for the init of container id to exit.
func (w *watch) waitExit(ctx context.Context, id string, timeout time.Duration) error {
	if err := w.until(ctx, time.Now().Add(timeout), func() bool { _, ok := w.exits[id]; return ok }); err != nil {
		return fmt.Errorf("waiting for %s to exit: %w", id, err)
	}
	return nil
}

// exitTimes returns containerd's timestamps of every init exit so far.
func (w *watch) exitTimes() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.exitSeq...)
}
