package systemd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/orchd/orchd/orchd/runtime/healthcheck"
)

// healthKey is the notice field a leaf reports its in-place HEALTHCHECK with.
const healthKey = "X_ORCHD_HEALTH"

// RelayOptions configure Relay.
type RelayOptions struct {
	// Healthcheck gates READY=1; "" = ready when the leaf says so.
	Healthcheck string
	// LeafHealth: the leaf runs the check itself (inside its container) and
	// reports X_ORCHD_HEALTH=healthy; otherwise Relay runs it (WaitHealthy).
	LeafHealth bool
	Readiness  time.Duration
	Log        io.Writer
}

// Relay runs a leaf that speaks sd_notify under a unit of Type=notify. It
// stays the unit's main process, so systemd sees the leaf's exit code (a
// leaf's MAINPID=<task pid> names a process outside the unit, whose end
// systemd cannot observe), gives the leaf its own NOTIFY_SOCKET, and tells
// systemd READY=1 once the leaf is ready and, with a HEALTHCHECK, healthy.
// Termination signals are passed on to the leaf. It returns the leaf's exit
// status (128+signal when killed).
func Relay(ctx context.Context, argv []string, o RelayOptions) (int, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	dir, err := os.MkdirTemp("", "orchd-relay-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return 1, fmt.Errorf("notify-relay: %w", err)
	}
	defer conn.Close()

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("notify-relay: %w", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()

	ready, verdicts := make(chan struct{}), make(chan string, 16)
	go readNotices(conn, ready, verdicts)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go tellSystemd(rctx, ready, verdicts, o)
	err = cmd.Wait()
	close(done)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 1, fmt.Errorf("notify-relay: %w", err)
}

// tellSystemd sends READY=1 once the leaf is ready and, with a HEALTHCHECK,
// healthy; and every verdict of that check, first to last, as
// STATUS=health: <verdict>, which survey reads back (the unit's StatusText).
func tellSystemd(ctx context.Context, ready <-chan struct{}, verdicts <-chan string, o RelayOptions) {
	select {
	case <-ready:
	case <-ctx.Done():
		return
	}
	tell := func(state string) {
		if _, err := daemon.SdNotify(false, state); err != nil {
			fmt.Fprintf(o.Log, "notify-relay: tell systemd: %v\n", err)
		}
	}
	if o.Healthcheck == "" {
		tell(daemon.SdNotifyReady)
		return
	}
	isReady := false
	late := time.AfterFunc(o.Readiness, func() {
		fmt.Fprintf(o.Log, "notify-relay: HEALTHCHECK %q did not pass within READINESS_TIMEOUT %s; systemd fails the start at TimeoutStartSec\n", o.Healthcheck, o.Readiness)
	})
	defer late.Stop()
	report := func(verdict string, err error) {
		if err != nil {
			fmt.Fprintf(o.Log, "notify-relay: HEALTHCHECK %s: %v\n", verdict, err)
		}
		state := statusPrefix + verdict
		if verdict == healthcheck.Healthy && !isReady {
			// Until the first pass systemd's TimeoutStartSec (at least
			// READINESS_TIMEOUT) is what fails the start.
			isReady = true
			late.Stop()
			state += "\n" + daemon.SdNotifyReady
		}
		tell("STATUS=" + state)
	}
	if !o.LeafHealth {
		client := &http.Client{Timeout: checkTimeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
		healthcheck.Loop(ctx, func(ctx context.Context, _ int64) error {
			return checkOnce(ctx, client, o.Healthcheck, o.Log)
		}, report)
		return
	}
	for {
		select {
		case v := <-verdicts:
			report(v, nil)
		case <-ctx.Done():
			return
		}
	}
}

// statusPrefix starts the STATUS= text the relay reports health with.
const statusPrefix = "health: "

// readNotices closes ready on the leaf's READY=1 and passes on each
// X_ORCHD_HEALTH verdict the leaf reports.
func readNotices(conn *net.UnixConn, ready chan<- struct{}, verdicts chan<- string) {
	buf := make([]byte, 4096)
	isReady := false
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(buf[:n]), "\n") {
			k, v, _ := strings.Cut(line, "=")
			switch {
			case k == "READY" && v == "1" && !isReady:
				isReady = true
				close(ready)
			case k == healthKey && (v == healthcheck.Healthy || v == healthcheck.Unhealthy):
				select {
				case verdicts <- v:
				default: // nobody listens (no HEALTHCHECK, or ending)
				}
			}
		}
	}
}
