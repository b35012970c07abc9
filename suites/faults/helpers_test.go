package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"
	"github.com/orchd/orchd/suites/framework"
)

// proc is one live process: pid and argv.
type proc struct {
	Pid  int
	Argv []string
}

func (p proc) String() string { return fmt.Sprintf("%d: %s", p.Pid, strings.Join(p.Argv, " ")) }

// procs lists live processes matching keep (zombies and vanished ones are left out).
func procs(keep func(p proc) bool) []proc {
	ents, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	var out []proc
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // gone, or a zombie / kernel thread
		}
		p := proc{Pid: pid, Argv: strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")}
		if keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// supervisors are the orchd supervise processes of one service (not a
// `supervise --init` reaper a host command runs under).
func supervisors(s *framework.Spec, svc string) []proc {
	unit := s.Layout.UnitFile(s.Label(svc))
	return procs(func(p proc) bool {
		return slices.Contains(p.Argv, "supervise") && !slices.Contains(p.Argv, "--init") && slices.Contains(p.Argv, unit)
	})
}

// orchdProcs are every supervise / containerd-run / containerd-agent process
// of the spec (a container service's supervisor is the agent's client; a
// containerd-run leaf runs only where a platform execs it).
func orchdProcs(s *framework.Spec) []proc {
	return procs(func(p proc) bool {
		return (slices.Contains(p.Argv, "supervise") || slices.Contains(p.Argv, "containerd-run") || slices.Contains(p.Argv, agent.Command)) &&
			strings.Contains(strings.Join(p.Argv, " "), s.StateDir)
	})
}

// withArgv are processes whose argv is exactly argv (host services).
func withArgv(argv ...string) []proc {
	return procs(func(p proc) bool { return slices.Equal(p.Argv, argv) })
}

// eventuallyOne waits for exactly one process from list and returns it.
func eventuallyOne(ctx context.Context, what string, list func() []proc) proc {
	GinkgoHelper()
	var got proc
	Eventually(ctx, func(g Gomega) {
		ps := list()
		g.Expect(ps).To(HaveLen(1), "%s", what)
		got = ps[0]
	}).Should(Succeed())
	return got
}

func sigkill(p proc) {
	GinkgoHelper()
	By(fmt.Sprintf("SIGKILL %s", p))
	err := syscall.Kill(p.Pid, syscall.SIGKILL)
	if !errors.Is(err, syscall.ESRCH) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// connect dials the victim daemon (it must be up).
func connect() *client.Client {
	GinkgoHelper()
	c, err := client.New(victim.Address())
	Expect(err).NotTo(HaveOccurred(), "connect %s", victim.Address())
	DeferCleanup(c.Close)
	return c
}

// containers lists the container ids of the spec's namespace.
func containers(ctx context.Context, g Gomega, c *client.Client, ns string) []string {
	list, err := c.Containers(namespaces.WithNamespace(ctx, ns))
	g.Expect(err).NotTo(HaveOccurred(), "list containers of %s", ns)
	var ids []string
	for _, ctr := range list {
		ids = append(ids, ctr.ID())
	}
	slices.Sort(ids)
	return ids
}

// tasks lists the task ids of the spec's namespace.
func tasks(ctx context.Context, g Gomega, c *client.Client, ns string) []string {
	resp, err := c.TaskService().List(namespaces.WithNamespace(ctx, ns), nil)
	g.Expect(err).NotTo(HaveOccurred(), "list tasks of %s", ns)
	var ids []string
	for _, t := range resp.Tasks {
		ids = append(ids, t.ID)
	}
	slices.Sort(ids)
	return ids
}

// containerOf is the container id orchd gives a service.
func containerOf(s *framework.Spec, svc string) string { return s.Namespace + "-" + svc }

// expectStatusFilesParse checks every status file that exists: complete JSON
// with a label and a state (writes are atomic, so there is never a torn one).
func expectStatusFilesParse(stateDir string) {
	GinkgoHelper()
	statusFilesParse(Default, stateDir)
}

func statusFilesParse(g Gomega, stateDir string) {
	l := contract.Layout{StateDir: stateDir}
	files, err := filepath.Glob(filepath.Join(l.StatusDir(), "*.json"))
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		g.Expect(err).NotTo(HaveOccurred())
		var st contract.Status
		g.Expect(json.Unmarshal(b, &st)).To(Succeed(), "status file %s is corrupt: %q", f, b)
		g.Expect(st.Label).NotTo(BeEmpty(), "status file %s has no label: %q", f, b)
		g.Expect(st.State).NotTo(BeEmpty(), "status file %s has no state: %q", f, b)
	}
}

// marker is a unique host-service argv: `sleep <n>` is found by exact match.
func marker() string { return strconv.Itoa(800000 + rand.IntN(100000)) }

// rowState is the state of svc in a survey (or "" when absent).
func rowState(rows []framework.Row, svc string) string {
	r, _ := framework.FindRow(rows, svc)
	return r.State
}

// taskPid is the pid of a container's running task (0 when there is none).
func taskPid(ctx context.Context, g Gomega, c *client.Client, ns, id string) uint32 {
	resp, err := c.TaskService().List(namespaces.WithNamespace(ctx, ns), nil)
	g.Expect(err).NotTo(HaveOccurred(), "list tasks of %s", ns)
	for _, t := range resp.Tasks {
		if t.ID == id {
			return t.Pid
		}
	}
	return 0
}

// eventuallyNewTask waits until the service's container runs a task other
// than old (a replaced container, not the stale one a killed leaf left).
func eventuallyNewTask(ctx context.Context, c *client.Client, s *framework.Spec, svc string, old uint32) {
	GinkgoHelper()
	Eventually(ctx, func(g Gomega) {
		pid := taskPid(ctx, g, c, s.Namespace, containerOf(s, svc))
		g.Expect(pid).NotTo(BeZero(), "no task for %s", svc)
		g.Expect(pid).NotTo(Equal(old), "still the old task of %s", svc)
	}).Should(Succeed())
}
