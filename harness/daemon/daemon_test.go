package daemon_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/daemon/daemontest"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/orchd/procfs"
)

func TestStartStop(t *testing.T) {
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			d, err := daemon.Start(ctx, tc, daemon.Options{})
			if err != nil {
				t.Fatal(err)
			}
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					_ = d.Stop(context.Background())
				}
			})
			if len(d.Address()) >= 108 {
				t.Errorf("socket path too long: %s", d.Address())
			}
			for _, sys := range []string{"/run/containerd/containerd.sock", "/var/lib/containerd"} {
				if strings.HasPrefix(d.Address(), sys) || strings.HasPrefix(d.Root(), sys) || strings.HasPrefix(d.State(), sys) {
					t.Errorf("daemon uses system path %s", sys)
				}
			}
			cfg, err := os.ReadFile(d.ConfigPath())
			if err != nil {
				t.Fatal(err)
			}
			wantVersion := "version = 2"
			if tc.Major() == 2 {
				wantVersion = "version = 3"
			}
			if !strings.HasPrefix(string(cfg), wantVersion+"\n") || !strings.Contains(string(cfg), `"io.containerd.grpc.v1.cri"`) {
				t.Errorf("config does not start with %q or does not disable CRI:\n%s", wantVersion, cfg)
			}
			c := daemontest.Client(t, d, "default")
			v, err := c.Version(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v.Version != tc.Containerd.Version {
				t.Errorf("daemon reports version %q, toolchain %q", v.Version, tc.Containerd.Version)
			}
			pid := d.Pid()
			if pid == 0 || !procfs.Alive(pid) {
				t.Fatalf("daemon pid %d not alive", pid)
			}
			env := strings.Join(procfs.Environ(pid), "\n")
			if !strings.Contains(env, "PATH="+tc.BinDirs()[0]+":") {
				t.Errorf("daemon PATH does not start with %s:\n%s", tc.BinDirs()[0], env)
			}
			if err := d.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			stopped = true
			if procfs.Alive(pid) {
				t.Errorf("containerd pid %d alive after Stop", pid)
			}
			if err := daemontest.Leftovers(d); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestTwoAtOnce runs one daemon per toolchain plus a second of the first
// toolchain, all serving at the same time.
func TestTwoAtOnce(t *testing.T) {
	tcs := daemontest.Toolchains(t)
	tcs = append(tcs, tcs[0])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ds []*daemon.Daemon
	for _, tc := range tcs {
		ds = append(ds, daemontest.Start(t, tc))
	}
	seen := map[string]bool{}
	for i, d := range ds {
		if seen[d.Address()] {
			t.Fatalf("two daemons share %s", d.Address())
		}
		seen[d.Address()] = true
		v, err := daemontest.Client(t, d, "default").Version(ctx)
		if err != nil {
			t.Fatalf("daemon %d (%s): %v", i, tcs[i].Name, err)
		}
		if v.Version != tcs[i].Containerd.Version {
			t.Errorf("daemon %d: version %s, want %s", i, v.Version, tcs[i].Containerd.Version)
		}
	}
}

// TestKillRestart kills containerd under a running task: the shim survives,
// a restarted daemon finds the task again, and Stop leaves nothing.
func TestKillRestart(t *testing.T) {
	sleeper := daemontest.Sleeper(t)
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			d := daemontest.Start(t, tc)
			ns := daemontest.Namespace("krtest")
			ctx = namespaces.WithNamespace(ctx, ns)
			c := daemontest.Client(t, d, ns)
			_, task, err := daemontest.RunSleeper(ctx, c, "kr-sleeper", sleeper)
			if err != nil {
				t.Fatal(err)
			}
			taskPid := int(task.Pid())
			oldPid := d.Pid()
			if err := d.Kill(); err != nil {
				t.Fatal(err)
			}
			if d.Pid() != 0 || procfs.Alive(oldPid) {
				t.Fatalf("containerd %d alive after Kill", oldPid)
			}
			if !procfs.Alive(taskPid) {
				t.Fatalf("task pid %d died with containerd", taskPid)
			}
			if !hasShim(t, d.Address(), "kr-sleeper") {
				t.Fatal("shim died with containerd")
			}
			if err := d.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if d.Pid() == 0 || d.Pid() == oldPid {
				t.Fatalf("restart: pid %d (old %d)", d.Pid(), oldPid)
			}
			c2, err := d.Client(client.WithDefaultNamespace(ns))
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			ctr, err := c2.LoadContainer(ctx, "kr-sleeper")
			if err != nil {
				t.Fatal(err)
			}
			task2, err := ctr.Task(ctx, nil)
			if err != nil {
				t.Fatalf("task after restart: %v", err)
			}
			st, err := task2.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != client.Running || int(task2.Pid()) != taskPid {
				t.Fatalf("after restart: status %s pid %d, want running pid %d", st.Status, task2.Pid(), taskPid)
			}
			// Kill again and Stop without restarting: the orphaned shim and
			// its container must still be cleaned up.
			if err := d.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := d.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if procfs.Alive(taskPid) {
				t.Errorf("container process %d survived Stop", taskPid)
				_ = syscall.Kill(taskPid, syscall.SIGKILL)
			}
			if err := daemontest.Leftovers(d); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestStopWithRunningTask: Stop kills tasks through the API so the shim
// unmounts and exits by itself.
func TestStopWithRunningTask(t *testing.T) {
	sleeper := daemontest.Sleeper(t)
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			d, err := daemon.Start(ctx, tc, daemon.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ns := daemontest.Namespace("stoptest")
			ctx = namespaces.WithNamespace(ctx, ns)
			c, err := d.Client(client.WithDefaultNamespace(ns))
			if err != nil {
				t.Fatal(err)
			}
			_, task, err := daemontest.RunSleeper(ctx, c, "stop-sleeper", sleeper)
			c.Close()
			if err != nil {
				_ = d.Stop(ctx)
				t.Fatal(err)
			}
			if err := d.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if procfs.Alive(int(task.Pid())) {
				t.Errorf("container process %d survived Stop", task.Pid())
			}
			if err := daemontest.Leftovers(d); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLongDirRefused(t *testing.T) {
	tc, err := toolchain.Resolve(context.Background(), toolchain.Options{Containerd: toolchain.System})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() + "/" + strings.Repeat("d", 100)
	_, err = daemon.Start(context.Background(), tc, daemon.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("want a socket-length error, got %v", err)
	}
}

// TestSecondDaemonOnSameDirRefused must fail without disturbing the first.
func TestSecondDaemonOnSameDirRefused(t *testing.T) {
	tc := daemontest.Toolchains(t)[0]
	d := daemontest.Start(t, tc)
	cfg, err := os.ReadFile(d.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	_, err = daemon.Start(context.Background(), tc, daemon.Options{Dir: d.Dir()})
	if err == nil || !strings.Contains(err.Error(), "already being served") {
		t.Fatalf("second daemon on %s: %v", d.Dir(), err)
	}
	after, err := os.ReadFile(d.ConfigPath())
	if err != nil || string(after) != string(cfg) {
		t.Fatalf("first daemon's config disturbed: %v", err)
	}
	if _, err := daemontest.Client(t, d, "default").Version(context.Background()); err != nil {
		t.Fatalf("first daemon stopped serving: %v", err)
	}
}

type syncBuffer = daemontest.SyncBuffer

func TestLogWriterAndLogTail(t *testing.T) {
	tc := daemontest.Toolchains(t)[1]
	var buf syncBuffer
	d, err := daemon.Start(context.Background(), tc, daemon.Options{LogWriter: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := d.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	// The copy goroutine may lag the socket a little: poll with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(buf.String(), "serving...") {
		if time.Now().After(deadline) {
			t.Fatalf("LogWriter did not get the daemon log:\n%s", buf.String())
		}
		<-tick.C
	}
	if tail := d.LogTail(5); !strings.Contains(tail, "containerd") || strings.Count(tail, "\n") > 4 {
		t.Errorf("LogTail(5):\n%s", tail)
	}
}

func hasShim(t *testing.T, addr, id string) bool {
	t.Helper()
	procs, err := procfs.Processes()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range procfs.Shims(procs) {
		if s.Address == addr && s.ID == id {
			return true
		}
	}
	return false
}
