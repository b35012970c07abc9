package systemd

import (
	"context"
	"errors"
	"fmt"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
)

// manager is the slice of the systemd manager orchd uses. The D-Bus
// implementation below is the real one; unit tests of tend's decisions may
// stand in for it.
type manager interface {
	// Reload is daemon-reload: the manager rereads unit files.
	Reload(ctx context.Context) error
	// Start, Restart and Stop enqueue a job and wait for its result.
	Start(ctx context.Context, unit string) error
	Restart(ctx context.Context, unit string) error
	Stop(ctx context.Context, unit string) error
	ReloadUnit(ctx context.Context, unit string) error
	ResetFailed(ctx context.Context, unit string) error
	// State reads a unit's state; a unit the manager does not know has
	// LoadState "not-found".
	State(ctx context.Context, unit string) (unitState, error)
	// Loaded lists the units the manager holds whose names match patterns.
	Loaded(ctx context.Context, patterns []string) ([]string, error)
	Close()
}

// unitState is what survey and tend read of a unit.
type unitState struct {
	Name         string
	LoadState    string // loaded, not-found, ...
	ActiveState  string // active, activating, deactivating, inactive, failed
	SubState     string // running, exited, start-post, auto-restart, dead, ...
	Result       string // success, exit-code, signal, timeout, start-limit-hit, ...
	Restart      string // the unit's Restart= policy
	FragmentPath string
	// StatusText is the last STATUS= the service sent (notify-relay: its
	// HEALTHCHECK verdict).
	StatusText string
	MainPID    int
	NRestarts  int
	// ExecMainCode is the si_code of the main process's end (1 exited,
	// 2 killed, 3 dumped; 0 never ended); ExecMainStatus its status.
	ExecMainCode   int
	ExecMainStatus int
	ActiveEnter    time.Time
	StateChange    time.Time
}

// busManager talks to systemd over D-Bus.
type busManager struct{ c *sd.Conn }

func (p *Platform) dialManager(ctx context.Context, scope string) (manager, error) {
	c, err := Dial(ctx, scope)
	if err != nil {
		return nil, err
	}
	return &busManager{c: c}, nil
}

func (m *busManager) Close() { m.c.Close() }

func (m *busManager) Reload(ctx context.Context) error { return m.c.ReloadContext(ctx) }

func (m *busManager) ResetFailed(ctx context.Context, unit string) error {
	return m.c.ResetFailedUnitContext(ctx, unit)
}

type jobFunc func(ctx context.Context, name, mode string, ch chan<- string) (int, error)

// job enqueues one job and waits for systemd's verdict on it.
func (m *busManager) job(ctx context.Context, what string, f jobFunc, unit string) error {
	ch := make(chan string, 1)
	if _, err := f(ctx, unit, "replace", ch); err != nil {
		return fmt.Errorf("%s %s: %w", what, unit, err)
	}
	select {
	case res := <-ch:
		if res == "done" {
			return nil
		}
		detail := ""
		if st, err := m.State(ctx, unit); err == nil && st.Result != "" && st.Result != "success" {
			detail = fmt.Sprintf(" (unit result %s, state %s/%s)", st.Result, st.ActiveState, st.SubState)
		}
		return fmt.Errorf("%s %s: job %s%s", what, unit, res, detail)
	case <-ctx.Done():
		return fmt.Errorf("%s %s: %w", what, unit, ctx.Err())
	}
}

func (m *busManager) Start(ctx context.Context, unit string) error {
	return m.job(ctx, "start", m.c.StartUnitContext, unit)
}

func (m *busManager) Restart(ctx context.Context, unit string) error {
	return m.job(ctx, "restart", m.c.RestartUnitContext, unit)
}

func (m *busManager) Stop(ctx context.Context, unit string) error {
	return m.job(ctx, "stop", m.c.StopUnitContext, unit)
}

func (m *busManager) ReloadUnit(ctx context.Context, unit string) error {
	return m.job(ctx, "reload", m.c.ReloadUnitContext, unit)
}

func (m *busManager) Loaded(ctx context.Context, patterns []string) ([]string, error) {
	us, err := m.c.ListUnitsByPatternsContext(ctx, nil, patterns)
	if err != nil {
		return nil, fmt.Errorf("list units %v: %w", patterns, err)
	}
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out, nil
}

func (m *busManager) State(ctx context.Context, unit string) (unitState, error) {
	st := unitState{Name: unit}
	up, err := m.c.GetUnitPropertiesContext(ctx, unit)
	if err != nil {
		return st, fmt.Errorf("properties of %s: %w", unit, err)
	}
	st.LoadState, _ = up["LoadState"].(string)
	st.ActiveState, _ = up["ActiveState"].(string)
	st.SubState, _ = up["SubState"].(string)
	st.FragmentPath, _ = up["FragmentPath"].(string)
	st.ActiveEnter = usec(up["ActiveEnterTimestamp"])
	st.StateChange = usec(up["StateChangeTimestamp"])
	if st.LoadState != "loaded" {
		return st, nil
	}
	sp, err := m.c.GetUnitTypePropertiesContext(ctx, unit, "Service")
	if err != nil {
		return st, fmt.Errorf("service properties of %s: %w", unit, err)
	}
	st.Result, _ = sp["Result"].(string)
	st.Restart, _ = sp["Restart"].(string)
	st.StatusText, _ = sp["StatusText"].(string)
	st.MainPID = int(num(sp["MainPID"]))
	st.NRestarts = int(num(sp["NRestarts"]))
	st.ExecMainCode = int(num(sp["ExecMainCode"]))
	st.ExecMainStatus = int(num(sp["ExecMainStatus"]))
	return st, nil
}

// usec converts a systemd timestamp (microseconds since the epoch, 0 = never).
func usec(v any) time.Time {
	n := num(v)
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n)
}

func num(v any) int64 {
	switch n := v.(type) {
	case uint32:
		return int64(n)
	case int32:
		return int64(n)
	case uint64:
		return int64(n)
	case int64:
		return n
	}
	return 0
}

var errNotOurs = errors.New("not an orchd unit of this namespace")
