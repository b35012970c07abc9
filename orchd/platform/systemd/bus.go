package systemd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
)

// probeTimeout bounds the "does the manager answer" probe, so a wedged bus
// costs a second, not a hang, when orchd picks its default platform.
const probeTimeout = 2 * time.Second

// Host describes what decides whether systemd can supervise here. Tests fill
// it; Detect reads the real one.
type Host struct {
	// PID1 is the command name of PID 1 (/proc/1/comm).
	PID1 string
	// Answers reports whether the manager of a scope answers on D-Bus.
	Answers func(ctx context.Context, scope string) error
}

// ThisHost is the host orchd runs on.
func ThisHost() Host {
	b, _ := os.ReadFile("/proc/1/comm")
	return Host{PID1: strings.TrimSpace(string(b)), Answers: answers}
}

// answers dials the manager and reads one property: a socket that accepts
// but whose manager is wedged does not count.
func answers(ctx context.Context, scope string) error {
	c, err := Dial(ctx, scope)
	if err != nil {
		return err
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		_, err := c.GetManagerProperty("Version")
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %s", probeTimeout)
	}
}

// Available reports, as one line that names the way out, why the systemd
// platform cannot work on h for scope; nil when the manager answers.
func Available(ctx context.Context, h Host, scope string) error {
	if err := h.managed(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := h.Answers(ctx, scope); err != nil {
		return silent(scope, err)
	}
	return nil
}

// managed refuses a host whose PID 1 is not systemd.
func (h Host) managed() error {
	if h.PID1 != "systemd" {
		pid1 := h.PID1
		if pid1 == "" {
			pid1 = "unknown"
		}
		return fmt.Errorf("platform systemd: PID 1 here is %q, not systemd, so there is no service manager to hand units to; pass --platform orchdi (or set ORCH_PLATFORM=orchdi)", pid1)
	}
	return nil
}

// silent is the one line for a manager that does not answer.
func silent(scope string, err error) error {
	other := "--system"
	if scope == "system" {
		other = "--user"
	}
	return fmt.Errorf("platform systemd: the %s manager does not answer on D-Bus (%s); pass %s, or --platform orchdi", managerName(scope), oneLine(err), other)
}

func managerName(scope string) string {
	if scope == "system" {
		return "system"
	}
	return "user"
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// Dial connects to the systemd manager of scope: the system manager over the
// system bus (or, as root, its private socket, which needs no dbus-daemon);
// the user manager over the session bus, else its private socket under
// $XDG_RUNTIME_DIR.
func Dial(ctx context.Context, scope string) (*sd.Conn, error) {
	if scope == "system" {
		c, err := sd.NewSystemConnectionContext(ctx)
		if err == nil {
			return c, nil
		}
		if os.Geteuid() != 0 {
			return nil, err
		}
		c, perr := sd.NewSystemdConnectionContext(ctx)
		if perr != nil {
			return nil, errors.Join(err, perr)
		}
		return c, nil
	}
	c, err := sd.NewUserConnectionContext(ctx)
	if err == nil {
		return c, nil
	}
	rt := os.Getenv("XDG_RUNTIME_DIR")
	if rt == "" {
		rt = filepath.Join("/run/user", strconv.Itoa(os.Getuid()))
	}
	private := filepath.Join(rt, "systemd", "private")
	if _, serr := os.Stat(private); serr != nil {
		return nil, err
	}
	c, perr := sd.NewConnection(func() (*godbus.Conn, error) {
		conn, err := godbus.Dial("unix:path="+private, godbus.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		if err := conn.Auth([]godbus.Auth{godbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	})
	if perr != nil {
		return nil, errors.Join(err, perr)
	}
	return c, nil
}
