package orchdi_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orchd/orchd/internal/syncbuf"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/logline"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/spec"
)

func TestRequiresWaitsForHTTPHealthcheck(t *testing.T) {
	var healthy atomic.Bool
	var hits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !healthy.Load() {
			http.Error(rw, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(rw, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	w := newWorld(t)
	w.grow(
		svc("api", `exec sleep 1000`, func(s *spec.Service) { s.Healthcheck = "http://" + ln.Addr().String() + "/health" }),
		svc("web", `exec sleep 1000`, func(s *spec.Service) { s.Requires = []string{"api"} }),
	)
	// Unhealthy answers keep web waiting.
	deadline := time.Now().Add(10 * time.Second)
	for hits.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never polled the endpoint")
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
	rows := w.survey()
	if rows["api"].State != contract.StateRunning || rows["api"].Healthy || rows["web"].State != contract.StateWaiting {
		t.Fatalf("before healthy: want api running unhealthy and web waiting, got %+v / %+v", rows["api"], rows["web"])
	}
	healthy.Store(true)
	w.waitRunningHealthy("api", 10*time.Second)
	w.waitRunningHealthy("web", 10*time.Second)
}

func TestStopCommandRunsInServiceNamespace(t *testing.T) {
	w := newWorld(t)
	pidf := filepath.Join(w.proj, "svc.pid")
	stopped := filepath.Join(w.proj, "stopped")
	// The service writes $$ (its pid inside its namespace); STOP uses it.
	s := svc("daemon", `trap 'echo graceful > `+stopped+`; exit 0' USR1; echo $$ > `+pidf+`; while :; do sleep 0.1; done`, func(s *spec.Service) {
		s.StopCommand = `kill -USR1 $(cat ` + pidf + `)`
		s.Timeouts.Stop = "5s"
	})
	w.grow(s)
	w.waitRunningHealthy("daemon", 10*time.Second)
	waitFile(t, pidf, 10*time.Second)
	w.fell()
	if got := strings.TrimSpace(readFile(stopped)); got != "graceful" {
		t.Errorf("STOP command did not reach the service: %q", got)
	}
}

func TestLogsLinesAndFollow(t *testing.T) {
	w := newWorld(t)
	w.grow(svc("counter", `i=0; while [ $i -lt 10 ]; do i=$((i+1)); echo line$i; done; while :; do i=$((i+1)); echo line$i; sleep 0.1; done`))
	logf := w.layout().LogFile(w.label("counter"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readFile(logf), "line12\n") {
		if time.Now().After(deadline) {
			t.Fatalf("log never reached line12: %q", readFile(logf))
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
	var buf bytes.Buffer
	if err := w.p.Logs(context.Background(), w.env, "counter", &buf, platform.LogOptions{Lines: 3}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("-n 3 gave %d lines: %q", len(lines), buf.String())
	}
	full := logText(readFile(logf))
	// The file may have grown since; the 3 lines must be consecutive and end no earlier than line12.
	if !strings.Contains(strings.Join(full, "\n")+"\n", strings.Join(lines, "\n")+"\n") {
		t.Errorf("-n 3 lines %q are not a tail of the log", lines)
	}

	// Follow: sees lines written after it started, returns when ctx ends.
	ctx, cancel := context.WithCancel(context.Background())
	sw := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- w.p.Logs(ctx, w.env, "counter", sw, platform.LogOptions{Follow: true, Lines: 1}) }()
	n := len(full)
	want := fmt.Sprintf("line%d\n", n+5)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(sw.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("follow never showed %q: %q", want, sw.String())
		}
		time.Sleep(20 * time.Millisecond) // poll interval; the deadline bounds the wait
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("follow: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("follow did not return after cancel")
	}
	if err := w.p.Logs(context.Background(), w.env, "nosuch", &buf, platform.LogOptions{Lines: -1}); err == nil {
		t.Errorf("logs of an unknown service should fail")
	}
}

func TestGrowIsIdempotent(t *testing.T) {
	w := newWorld(t)
	a := svc("a", `exec sleep 1000`)
	b := svc("b", `exec sleep 1000`)
	res := w.grow(a, b)
	if len(res.Started) != 2 {
		t.Fatalf("first grow: %+v", res)
	}
	pa := w.waitRunningHealthy("a", 10*time.Second).Pid
	pb := w.waitRunningHealthy("b", 10*time.Second).Pid

	res = w.grow(a, b)
	if len(res.Unchanged) != 2 || len(res.Started)+len(res.Restarted) != 0 {
		t.Fatalf("second grow should leave both alone: %+v", res)
	}
	if got := w.survey(); got["a"].Pid != pa || got["b"].Pid != pb {
		t.Fatalf("second grow changed pids: %+v", got)
	}

	b.RunCommand = `exec sleep 1001`
	res = w.grow(a, b)
	if len(res.Unchanged) != 1 || res.Unchanged[0] != "a" || len(res.Restarted) != 1 || res.Restarted[0] != "b" {
		t.Fatalf("changed unit should restart only b: %+v", res)
	}
	if !alive(pa) || alive(pb) {
		t.Errorf("a (%d) should still run and old b (%d) be gone", pa, pb)
	}
	nb := w.waitRunningHealthy("b", 10*time.Second).Pid
	if nb == pb || w.survey()["a"].Pid != pa {
		t.Errorf("want a new b and the same a")
	}
	if left := w.survey(); len(left) != 2 {
		t.Errorf("survey: %+v", left)
	}
}

func TestTendNoStartWritesArtifactsOnly(t *testing.T) {
	w := newWorld(t)
	res := w.tend(platform.TendOptions{NoStart: true}, svc("a", `exec sleep 1000`))
	if len(res.Started) != 0 {
		t.Fatalf("no-start started %v", res.Started)
	}
	fi, err := os.Stat(w.layout().UnitFile(w.label("a")))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("unit file: %v %v", fi, err)
	}
	for _, d := range []string{w.env.StateDir + "/run", w.env.StateDir + "/status", w.env.StateDir + "/logs"} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: want 0700 dir, got %v %v", d, fi, err)
		}
	}
	if rows := w.survey(); len(rows) != 0 {
		t.Errorf("no-start survey: %+v", rows)
	}
}

func TestFellKeepsDataVolumesRemovesOnlyNamed(t *testing.T) {
	w := newWorld(t)
	data := filepath.Join(w.env.DataDir, "host-path")
	named := contract.NamedVolume(w.env.DataDir, w.env.Namespace, "vol")
	other := contract.NamedVolume(w.env.DataDir, "other-ns", "vol")
	for _, d := range []string{named, other} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	w.grow(svc("a", `mkdir -p `+data+` && echo ok > `+data+`/f && exec sleep 1000`))
	waitFile(t, filepath.Join(data, "f"), 10*time.Second)
	w.fell()
	for _, d := range []string{data, named, other} {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("fell removed data %s: %v", d, err)
		}
	}
	if err := w.p.Fell(context.Background(), w.env, platform.FellOptions{Volumes: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(named); !os.IsNotExist(err) {
		t.Fatalf("fell --volumes kept this namespace's named volume: %v", err)
	}
	for _, d := range []string{data, other, w.env.DataDir} {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("fell --volumes removed %s, not a named volume of this namespace: %v", d, err)
		}
	}
}

func TestGrowNamedStartsItsRequirements(t *testing.T) {
	w := newWorld(t)
	all := []spec.Service{
		svc("db", `exec sleep 1000`),
		svc("cache", `exec sleep 1000`),
		svc("web", `exec sleep 1000`, func(s *spec.Service) { s.Requires = []string{"db"}; s.After = []string{"cache"} }),
	}
	res := w.tend(platform.TendOptions{Only: []string{"web"}}, all...)
	if strings.Join(res.Started, ",") != "db,web" {
		t.Fatalf("grow web should start db (REQUIRES) then web, not cache (AFTER): %+v", res)
	}
	w.waitRunningHealthy("web", 10*time.Second)
	if _, ok := w.survey()["cache"]; ok {
		t.Errorf("cache started")
	}
}

// logText is the lines of orchd's service log (logline records) as written.
func logText(records string) []string {
	var a logline.Assembler
	var out []string
	for _, phys := range strings.Split(strings.TrimSuffix(records, "\n"), "\n") {
		if l, ok := a.Add([]byte(phys)); ok {
			out = append(out, string(l.Text))
		}
	}
	return out
}
