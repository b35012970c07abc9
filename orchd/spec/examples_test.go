package spec

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orchd/internal/syncbuf"
)

// startShell runs cmd with /bin/sh -c in its own process group, as the bare
// runtime does, and kills the whole group when the test ends.
func startShell(t *testing.T, svc Service) (*exec.Cmd, *syncbuf.Buffer) {
	t.Helper()
	out := &syncbuf.Buffer{}
	cmd := exec.Command("/bin/sh", "-c", svc.RunCommand)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for k, v := range svc.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", svc.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return cmd, out
}

// waitFor polls until out contains want or the deadline passes.
func waitFor(t *testing.T, ctx context.Context, name string, out *syncbuf.Buffer, want string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(out.String(), want) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: no %q in its output before the deadline; output so far: %q", name, want, out.String())
		case <-tick.C:
		}
	}
}

// The hello example's commands really run on this host: the oneshot succeeds,
// the long-running services produce output, the healthcheck passes.
func TestHelloExampleRuns(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Fatalf("/bin/sh is required: %v (install it with: apt-get install -y dash)", err)
	}
	s, err := ParseFiles([]string{"../../examples/hello/Orchfile"}, Options{LookupEnv: noEnv, Args: map[string]string{"greeting": "hi-there"}})
	if err != nil {
		t.Fatal(err)
	}
	order, err := TopoOrder(s.Services)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, order, []string{"prepare", "ticker", "watcher"})
	data := t.TempDir()
	vars := map[string]string{"ORCH_DATA": data, "ORCH_PROJECT": data, "ORCH_STATE_DIR": data}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	prepare, _ := s.Service("prepare")
	p := *prepare
	ExpandBuiltins(&p, vars)
	if out, err := exec.CommandContext(ctx, "/bin/sh", "-c", p.RunCommand).CombinedOutput(); err != nil {
		t.Fatalf("oneshot prepare: %v: %s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(data, "hello", "greeting"))
	if err != nil || string(got) != "hi-there\n" {
		t.Fatalf("greeting file = %q, %v", got, err)
	}

	ticker, _ := s.Service("ticker")
	tk := *ticker
	ExpandBuiltins(&tk, vars)
	_, tickOut := startShell(t, tk)
	watcher, _ := s.Service("watcher")
	w := *watcher
	ExpandBuiltins(&w, vars)
	_, watchOut := startShell(t, w)
	waitFor(t, ctx, "ticker", tickOut, "hi-there from ticker")
	waitFor(t, ctx, "watcher", watchOut, "hi-there")

	if out, err := exec.CommandContext(ctx, "/bin/sh", "-c", w.Healthcheck).CombinedOutput(); err != nil {
		t.Fatalf("watcher healthcheck: %v: %s", err, out)
	}
}
