package containerd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/daemon/daemontest"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/leaks"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/procfs"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

// project is one end-to-end test's Orchfile, state dir and namespace, driven
// through the orchd binary the way a user drives it.
type project struct {
	t     *testing.T
	bin   string
	d     *daemon.Daemon
	ns    string
	dir   string
	state string
}

func buildOrchd(t *testing.T) string { return gobuild.OrchdT(t) }

func newProject(t *testing.T, bin string, d *daemon.Daemon, ns, orchfile string) *project {
	t.Helper()
	root := t.TempDir()
	p := &project{t: t, bin: bin, d: d, ns: ns, dir: filepath.Join(root, "proj"), state: filepath.Join(root, "state")}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "Orchfile"), []byte(orchfile), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever happened, fell; the test body asserts on its own fell.
		_, _ = p.orchd(2*time.Minute, "fell")
	})
	return p
}

// orchd runs the binary with this project's configuration.
func (p *project) orchd(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{"--project-dir", p.dir, "--state-dir", p.state, "--runtime", "containerd", "--platform", "orchdi", "--namespace", p.ns}, args...)
	cmd := exec.CommandContext(ctx, p.bin, full...)
	cmd.Env = append(os.Environ(), crd.EnvSocket+"="+p.d.Address())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (p *project) must(timeout time.Duration, args ...string) string {
	p.t.Helper()
	out, err := p.orchd(timeout, args...)
	if err != nil {
		p.t.Fatalf("orchd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (p *project) survey() map[string]platform.ServiceStatus {
	p.t.Helper()
	out := p.must(time.Minute, "survey", "--json")
	var rows []platform.ServiceStatus
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		p.t.Fatalf("survey --json: %v\n%s", err, out)
	}
	m := map[string]platform.ServiceStatus{}
	for _, r := range rows {
		m[r.Name] = r
	}
	return m
}

// eventually polls cond until it holds or within passes.
func (p *project) eventually(within time.Duration, what string, cond func() (bool, string)) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(200 * time.Millisecond) // poll interval
	}
	p.dumpLogs()
	p.t.Fatalf("%s: not within %s; last: %s", what, within, last)
}

// dumpLogs puts survey and every service and supervisor log into the test log.
func (p *project) dumpLogs() {
	p.t.Helper()
	out, _ := p.orchd(time.Minute, "survey")
	p.t.Logf("survey:\n%s", out)
	logs, _ := filepath.Glob(filepath.Join(p.state, "logs", "*.log"))
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		p.t.Logf("%s:\n%s", filepath.Base(f), b)
	}
}

// tasks returns the running tasks' pids by container id.
func (p *project) tasks(c *client.Client) map[string]uint32 {
	p.t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), p.ns)
	ctrs, err := c.Containers(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, ctr := range ctrs {
		task, err := ctr.Task(ctx, nil)
		if err != nil {
			continue
		}
		if st, err := task.Status(ctx); err == nil && st.Status == client.Running {
			out[ctr.ID()] = task.Pid()
		}
	}
	return out
}

func (p *project) fellAndAssertClean() {
	p.t.Helper()
	p.must(2*time.Minute, "fell")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := leaks.Inspect(ctx, leaks.Target{Address: p.d.Address(), Namespace: p.ns, Root: p.d.Root(), State: p.d.State(), OrchdStateDir: p.state})
	if err != nil {
		p.t.Fatalf("inspect: %v", err)
	}
	if !r.Empty() {
		p.t.Errorf("leaks after fell:\n%s", r)
	}
	if _, err := os.Stat(filepath.Join(p.state, "fifo")); !os.IsNotExist(err) {
		p.t.Errorf("fifo dir left after fell (%v)", err)
	}
}

func TestEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("these tests run containers and need root: run `sudo go test ./orchd/runtime/containerd/...`")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	set, err := images.Build(ctx, t.TempDir())
	cancel()
	if err != nil {
		t.Fatalf("build fixture images: %v", err)
	}
	probe, err := set.Get(images.Probe)
	if err != nil {
		t.Fatal(err)
	}
	user, err := set.Get(images.ProbeUser)
	if err != nil {
		t.Fatal(err)
	}
	bin := buildOrchd(t)
	t.Run("GrowFailsFastWithoutDaemon", func(t *testing.T) {
		dir := t.TempDir()
		sock := filepath.Join(dir, "absent.sock")
		if err := os.WriteFile(filepath.Join(dir, "Orchfile"), []byte("SERVICE x\nFROM "+probe.Dir+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--project-dir", dir, "--state-dir", filepath.Join(dir, "state"), "--runtime", "containerd", "--platform", "orchdi", "--namespace", "nodaemon", "grow")
		cmd.Env = append(os.Environ(), crd.EnvSocket+"="+sock)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("grow succeeded without a daemon:\n%s", out)
		}
		for _, want := range []string{sock, "orchd-harness daemon", "containerd &"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("grow output lacks %q:\n%s", want, out)
			}
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("grow took %s to fail", d)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "state", "run", "*")); len(m) > 0 {
			t.Errorf("grow wrote state before failing: %v", m)
		}
	})
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			d := daemontest.Start(t, tc)
			c := daemontest.Client(t, d, "default")
			seq := 0
			ns := func() string { seq++; return fmt.Sprintf("e%d-%d", os.Getpid()%10000, seq) }

			t.Run("GrowSixThenFell", func(t *testing.T) {
				var of strings.Builder
				for i, name := range []string{"a", "b", "c", "d", "e", "f"} {
					img := probe.Dir
					if i%2 == 1 {
						img = "oci-layout://" + user.Dir
					}
					fmt.Fprintf(&of, "SERVICE %s\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 5s\nENV N=%d\n", name, img, i)
					if i > 0 {
						fmt.Fprintf(&of, "AFTER a\n")
					}
					of.WriteString("\n")
				}
				p := newProject(t, bin, d, ns(), of.String())
				p.must(3*time.Minute, "grow")
				p.eventually(2*time.Minute, "6 running tasks", func() (bool, string) {
					got := p.tasks(c)
					return len(got) == 6, fmt.Sprint(got)
				})
				rows := p.survey()
				for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
					r := rows[name]
					if r.ContainerID != crd.ContainerID(p.ns, name) || r.TaskStatus != "running" {
						t.Errorf("survey %s: container %q task %q", name, r.ContainerID, r.TaskStatus)
					}
				}
				p.fellAndAssertClean()
			})

			t.Run("Oneshot", func(t *testing.T) {
				p := newProject(t, bin, d, ns(), fmt.Sprintf("SERVICE once\nFROM %s\nCMD exit 0\nONESHOT true\n\nSERVICE after\nFROM %s\nCMD sleep forever\nREQUIRES once\nTIMEOUT_STOP 5s\n", probe.Dir, probe.Dir))
				p.must(3*time.Minute, "grow")
				p.eventually(2*time.Minute, "oneshot done and its dependent running", func() (bool, string) {
					rows := p.survey()
					once, after := rows["once"], rows["after"]
					ok := once.ExitCode != nil && *once.ExitCode == 0 && after.TaskStatus == "running"
					return ok, fmt.Sprintf("%+v / %+v", once, after)
				})
				// The oneshot's container is gone once it completed.
				ctx := namespaces.WithNamespace(context.Background(), p.ns)
				if _, err := c.LoadContainer(ctx, crd.ContainerID(p.ns, "once")); err == nil {
					t.Errorf("oneshot container still exists after it completed")
				}
				p.fellAndAssertClean()
			})

			t.Run("RestartOnFailureThenFell", func(t *testing.T) {
				p := newProject(t, bin, d, ns(), fmt.Sprintf("SERVICE crash\nFROM %s\nCMD crash-after 0.3s 3\nRESTART on-failure\nRESTART_DELAY 1s\nSTART_LIMIT_BURST 100\nSTART_LIMIT_INTERVAL 10m\nTIMEOUT_STOP 5s\n", probe.Dir))
				p.must(3*time.Minute, "grow")
				p.eventually(2*time.Minute, "two restarts", func() (bool, string) {
					r := p.survey()["crash"]
					return r.Restarts >= 2, fmt.Sprintf("%+v", r)
				})
				if r := p.survey()["crash"]; r.ExitCode != nil && *r.ExitCode != 3 {
					t.Errorf("last exit code %d, want the container's 3", *r.ExitCode)
				}
				p.fellAndAssertClean()
			})

			t.Run("SecondGrowIsIdempotent", func(t *testing.T) {
				p := newProject(t, bin, d, ns(), fmt.Sprintf("SERVICE web\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 5s\n\nSERVICE worker\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 5s\n", probe.Dir, probe.Dir))
				p.must(3*time.Minute, "grow")
				var first map[string]uint32
				p.eventually(2*time.Minute, "2 running tasks", func() (bool, string) {
					first = p.tasks(c)
					return len(first) == 2, fmt.Sprint(first)
				})
				p.must(3*time.Minute, "grow")
				if second := p.tasks(c); fmt.Sprint(second) != fmt.Sprint(first) {
					t.Errorf("second grow changed the tasks: %v -> %v", first, second)
				}
				p.fellAndAssertClean()
			})

			// The process that runs a container service's leaf under orchdi is its
			// supervisor (the containerd agent's client): killed, it leaves its task
			// to the agent to stop and remove, and fell must still end clean.
			t.Run("KilledSupervisorThenFell", func(t *testing.T) {
				p := newProject(t, bin, d, ns(), fmt.Sprintf("SERVICE victim\nFROM %s\nCMD sleep forever\nTIMEOUT_STOP 5s\n", probe.Dir))
				p.must(3*time.Minute, "grow")
				p.eventually(2*time.Minute, "running task", func() (bool, string) {
					got := p.tasks(c)
					return len(got) == 1, fmt.Sprint(got)
				})
				procs, err := procfs.Processes()
				if err != nil {
					t.Fatal(err)
				}
				killed := 0
				for _, pr := range procs {
					if slices.Contains(pr.Argv, "supervise") && strings.Contains(pr.Cmdline(), p.state) {
						if err := syscall.Kill(pr.Pid, syscall.SIGKILL); err == nil {
							killed++
						}
					}
				}
				if killed != 1 {
					t.Fatalf("killed %d supervisors, want 1", killed)
				}
				p.fellAndAssertClean()
			})
		})
	}
}
