// Package leaks finds what a containerd client left behind in one namespace:
// API objects (tasks, containers, snapshots, leases, ingests), shim and orchd
// processes, mounts, cgroups and runtime files. Inspect reports them, Diff
// compares two reports, Clean force-deletes them.
package leaks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/orchd/procfs"
	"github.com/orchd/orchd/orchd/runtime/containerd/agent"

	"github.com/orchd/orchd/orchd/contract"

	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

// RunDir is where shims and runc keep per-host state regardless of the
// daemon's own state dir: shim sockets (s/), runc state (runc/<ns>/) and the
// client's stdio FIFOs (fifo/).
const RunDir = "/run/containerd"

// Target says which daemon and namespace to inspect.
type Target struct {
	Address   string `json:"address"`
	Namespace string `json:"namespace"`
	// Root and State are the daemon's dirs (optional): mounts and runtime
	// files under them are inspected when set.
	Root  string `json:"root,omitempty"`
	State string `json:"state,omitempty"`
	// OrchdStateDir (optional) finds orchd supervise/containerd-run processes
	// whose command line or environment names it, and FIFO dirs left in its fifo/.
	OrchdStateDir string `json:"orchd_state_dir,omitempty"`
	// IDs are extra container ids to look for in RunDir (shim sockets, FIFOs)
	// beyond those the daemon still knows.
	IDs []string `json:"ids,omitempty"`
	// CountImages makes images count as leaks (they are reported either way).
	CountImages bool `json:"count_images,omitempty"`
}

// Report lists leaked objects by kind. Images are informational unless
// Target.CountImages was set.
type Report struct {
	Namespace   string   `json:"namespace"`
	Tasks       []string `json:"tasks"`
	Containers  []string `json:"containers"`
	Snapshots   []string `json:"snapshots"` // "<snapshotter>/<key>"
	Leases      []string `json:"leases"`
	Ingests     []string `json:"ingests"`
	Images      []string `json:"images"`
	Shims       []string `json:"shims"`     // "pid <n> <argv>"
	Processes   []string `json:"processes"` // orchd supervise / containerd-run / containerd-agent
	Mounts      []string `json:"mounts"`
	Cgroups     []string `json:"cgroups"` // "<hierarchy>:/<ns>/..."
	Files       []string `json:"files"`
	CountImages bool     `json:"count_images,omitempty"`
}

type kind struct {
	name  string
	items func(*Report) *[]string
}

// kinds fixes the order of String and the field each kind lives in.
var kinds = []kind{
	{"task", func(r *Report) *[]string { return &r.Tasks }},
	{"container", func(r *Report) *[]string { return &r.Containers }},
	{"snapshot", func(r *Report) *[]string { return &r.Snapshots }},
	{"lease", func(r *Report) *[]string { return &r.Leases }},
	{"ingest", func(r *Report) *[]string { return &r.Ingests }},
	{"image", func(r *Report) *[]string { return &r.Images }},
	{"shim", func(r *Report) *[]string { return &r.Shims }},
	{"process", func(r *Report) *[]string { return &r.Processes }},
	{"mount", func(r *Report) *[]string { return &r.Mounts }},
	{"cgroup", func(r *Report) *[]string { return &r.Cgroups }},
	{"file", func(r *Report) *[]string { return &r.Files }},
}

// Count is the number of leaked objects (images only with CountImages).
func (r *Report) Count() int {
	n := 0
	for _, k := range kinds {
		if k.name == "image" && !r.CountImages {
			continue
		}
		n += len(*k.items(r))
	}
	return n
}

// Empty reports whether nothing leaked.
func (r *Report) Empty() bool { return r.Count() == 0 }

// String names each leaked object on its own line, e.g. "snapshot overlayfs/orch-web".
func (r *Report) String() string {
	var b strings.Builder
	if r.Empty() {
		fmt.Fprintf(&b, "namespace %s: no leaks\n", r.Namespace)
	} else {
		fmt.Fprintf(&b, "namespace %s: %d leaked\n", r.Namespace, r.Count())
	}
	for _, k := range kinds {
		suffix := ""
		if k.name == "image" && !r.CountImages {
			suffix = " (not counted)"
		}
		for _, it := range *k.items(r) {
			fmt.Fprintf(&b, "  %s %s%s\n", k.name, it, suffix)
		}
	}
	return b.String()
}

// JSON renders the report (empty lists as []).
func (r *Report) JSON() ([]byte, error) {
	for _, k := range kinds {
		if p := k.items(r); *p == nil {
			*p = []string{}
		}
	}
	return json.MarshalIndent(r, "", "  ")
}

// Diff returns what after has that before had not (new leaks).
func Diff(before, after *Report) *Report {
	out := &Report{Namespace: after.Namespace, CountImages: after.CountImages}
	for _, k := range kinds {
		had := map[string]bool{}
		if before != nil {
			for _, it := range *k.items(before) {
				had[it] = true
			}
		}
		for _, it := range *k.items(after) {
			if !had[it] {
				*k.items(out) = append(*k.items(out), it)
			}
		}
	}
	return out
}

// Inspect runs a synchronous garbage collection, then reports what is left.
func Inspect(ctx context.Context, t Target) (*Report, error) {
	return inspect(ctx, t, true)
}

// Snapshot reports the current state without collecting garbage first (a
// baseline for Diff that does not disturb the daemon).
func Snapshot(ctx context.Context, t Target) (*Report, error) {
	return inspect(ctx, t, false)
}

func (t Target) check() error {
	if t.Address == "" || t.Namespace == "" {
		return errors.New("leaks: target needs an address and a namespace")
	}
	return nil
}

func inspect(ctx context.Context, t Target, gc bool) (*Report, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	c, err := client.New(procfs.TrimUnix(t.Address))
	if err != nil {
		return nil, fmt.Errorf("leaks: connect %s: %w", t.Address, err)
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, t.Namespace)
	if gc {
		if err := crd.SyncGC(ctx, c); err != nil {
			return nil, err
		}
	}
	s, err := scan(ctx, c, t)
	if err != nil {
		return nil, err
	}
	return s.report(t), nil
}

// scanned holds structured findings so Clean can act on them.
type scanned struct {
	tasks      []string
	containers []string
	snapshots  map[string][]snapshots.Info // by snapshotter
	leases     []leases.Lease
	ingests    []string
	images     []string
	shims      []procfs.Shim
	procs      []procfs.Proc
	mounts     []procfs.Mount
	cgroups    []string // absolute dirs
	cgroupName map[string]string
	files      []string
}

func scan(ctx context.Context, c *client.Client, t Target) (*scanned, error) {
	s := &scanned{snapshots: map[string][]snapshots.Info{}, cgroupName: map[string]string{}}
	var errs []error
	ids := map[string]bool{}
	for _, id := range t.IDs {
		ids[id] = true
	}

	tl, err := c.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	if err != nil {
		errs = append(errs, fmt.Errorf("list tasks: %w", err))
	} else {
		for _, p := range tl.Tasks {
			s.tasks = append(s.tasks, p.ID)
			ids[p.ID] = true
		}
	}
	cs, err := c.ContainerService().List(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list containers: %w", err))
	}
	for _, ci := range cs {
		s.containers = append(s.containers, ci.ID)
		ids[ci.ID] = true
	}
	sns, err := snapshotters(ctx, c)
	if err != nil {
		errs = append(errs, err)
	}
	for _, sn := range sns {
		err := c.SnapshotService(sn).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			s.snapshots[sn] = append(s.snapshots[sn], info)
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("walk snapshots %s: %w", sn, err))
		}
	}
	if s.leases, err = c.LeasesService().List(ctx); err != nil {
		errs = append(errs, fmt.Errorf("list leases: %w", err))
	}
	st, err := c.ContentStore().ListStatuses(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list ingests: %w", err))
	}
	for _, x := range st {
		s.ingests = append(s.ingests, x.Ref)
	}
	imgs, err := c.ImageService().List(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("list images: %w", err))
	}
	for _, im := range imgs {
		s.images = append(s.images, im.Name)
	}

	procs, err := procfs.Processes()
	if err != nil {
		errs = append(errs, err)
	}
	for _, sh := range procfs.Shims(procs) {
		if sh.Address == procfs.TrimUnix(t.Address) && sh.Namespace == t.Namespace {
			s.shims = append(s.shims, sh)
			if sh.ID != "" {
				ids[sh.ID] = true
			}
		}
	}
	if t.OrchdStateDir != "" {
		s.procs = orchdProcs(procs, t.OrchdStateDir)
	}
	if s.mounts, err = nsMounts(t); err != nil {
		errs = append(errs, err)
	} else if s.mounts, err = dropForeignTmpMounts(ctx, c, t, sns, s.mounts); err != nil {
		errs = append(errs, fmt.Errorf("attribute transient mounts: %w", err))
	}
	if err := s.scanCgroups(t.Namespace); err != nil {
		errs = append(errs, err)
	}
	s.files = runtimeFiles(t, ids)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("leaks: inspect %s namespace %s: %w", t.Address, t.Namespace, err)
	}
	return s, nil
}

// snapshotters lists the snapshotters that loaded (at least overlayfs and native).
func snapshotters(ctx context.Context, c *client.Client) ([]string, error) {
	resp, err := c.IntrospectionService().Plugins(ctx, `type=="io.containerd.snapshotter.v1"`)
	if err != nil {
		return []string{"overlayfs", "native"}, fmt.Errorf("list snapshotters: %w", err)
	}
	var out []string
	for _, p := range resp.Plugins {
		if p.InitErr == nil {
			out = append(out, p.ID)
		}
	}
	sort.Strings(out)
	return out, nil
}

// orchdProcs finds "orchd supervise", "orchd containerd-run" and "orchd
// containerd-agent" processes tied to stateDir by their command line or
// environment.
func orchdProcs(procs []procfs.Proc, stateDir string) []procfs.Proc {
	var out []procfs.Proc
	self := os.Getpid()
	for _, p := range procs {
		if p.Pid == self || !(slices.Contains(p.Argv, "supervise") || slices.Contains(p.Argv, "containerd-run") || slices.Contains(p.Argv, agent.Command)) {
			continue
		}
		if strings.Contains(p.Cmdline(), stateDir) || slices.ContainsFunc(procfs.Environ(p.Pid), func(kv string) bool {
			return strings.Contains(kv, stateDir)
		}) {
			out = append(out, p)
		}
	}
	return out
}

// runtimeDirs are the per-namespace dirs runtimes keep under the state dir.
var runtimeDirs = []string{"io.containerd.runtime.v2.task", "io.containerd.runtime.v1.linux"}

// nsMounts lists mounts under Root and State, leaving out other namespaces'
// task dirs (another namespace's live container is not our leak).
func nsMounts(t Target) ([]procfs.Mount, error) {
	var dirs []string
	for _, d := range []string{t.Root, t.State} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return nil, nil
	}
	ms, err := procfs.MountsUnder(dirs...)
	if err != nil {
		return nil, err
	}
	var out []procfs.Mount
	for _, m := range ms {
		if t.State != "" && otherNamespace(m.Point, t.State, t.Namespace) {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

func otherNamespace(p, state, ns string) bool {
	for _, rd := range runtimeDirs {
		base := filepath.Join(state, rd)
		if procfs.Under(p, base) && p != base {
			rel := strings.SplitN(strings.TrimPrefix(p, base+"/"), "/", 2)
			return rel[0] != ns
		}
	}
	return false
}

// scanCgroups finds cgroups below /<ns>/ in every v1 hierarchy and the v2
// mount; the /<ns> parent itself stays (runc never removes it).
func (s *scanned) scanCgroups(ns string) error {
	ms, err := procfs.Mounts()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, m := range ms {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		base := filepath.Join(m.Point, ns)
		if seen[base] {
			continue
		}
		seen[base] = true
		if _, err := os.Stat(base); err != nil {
			continue
		}
		label := filepath.Base(m.Point)
		if m.FSType == "cgroup2" {
			label = "cgroup2(" + label + ")"
		}
		_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() || p == base {
				return nil
			}
			s.cgroups = append(s.cgroups, p)
			s.cgroupName[p] = label + ":" + strings.TrimPrefix(p, m.Point)
			return nil
		})
	}
	return nil
}

// runtimeFiles lists per-namespace runtime state: task bundles under State,
// runc state, and shim sockets and FIFOs of known container ids.
func runtimeFiles(t Target, ids map[string]bool) []string {
	var out []string
	add := func(dir string) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	if t.State != "" {
		for _, rd := range runtimeDirs {
			add(filepath.Join(t.State, rd, t.Namespace))
		}
	}
	add(filepath.Join(crd.RuncRoot, t.Namespace))
	addr := procfs.TrimUnix(t.Address)
	for id := range ids {
		for _, sock := range []string{shimSocket(addr, t.Namespace, id, false), shimSocket(addr, t.Namespace, id, true)} {
			if _, err := os.Lstat(sock); err == nil {
				out = append(out, sock)
			}
		}
	}
	// orchd's containerd runtime keeps its FIFOs in <orchd state>/fifo/<label>.
	if t.OrchdStateDir != "" {
		add(contract.Layout{StateDir: t.OrchdStateDir}.FIFORoot())
	}
	// The client's FIFO sets are dirs of "<id>-stdin/-stdout/-stderr".
	fifoRoot := filepath.Join(RunDir, "fifo")
	if ents, err := os.ReadDir(fifoRoot); err == nil {
		for _, e := range ents {
			inner, err := os.ReadDir(filepath.Join(fifoRoot, e.Name()))
			if err != nil {
				continue
			}
			for _, f := range inner {
				id, _, ok := cutLast(f.Name(), "-")
				if ok && ids[id] {
					out = append(out, filepath.Join(fifoRoot, e.Name()))
					break
				}
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func shimSocket(addr, ns, id string, debug bool) string {
	return daemon.ShimSocket(addr, ns, id, debug)
}

func (s *scanned) report(t Target) *Report {
	r := &Report{Namespace: t.Namespace, CountImages: t.CountImages}
	r.Tasks = s.tasks
	r.Containers = s.containers
	for sn, infos := range s.snapshots {
		for _, in := range infos {
			r.Snapshots = append(r.Snapshots, sn+"/"+in.Name)
		}
	}
	for _, l := range s.leases {
		r.Leases = append(r.Leases, l.ID)
	}
	r.Ingests = s.ingests
	r.Images = s.images
	for _, sh := range s.shims {
		r.Shims = append(r.Shims, fmt.Sprintf("pid %d %s", sh.Pid, sh.Cmdline()))
	}
	for _, p := range s.procs {
		r.Processes = append(r.Processes, fmt.Sprintf("pid %d %s", p.Pid, p.Cmdline()))
	}
	for _, m := range s.mounts {
		r.Mounts = append(r.Mounts, fmt.Sprintf("%s (%s)", m.Point, m.FSType))
	}
	for _, cg := range s.cgroups {
		r.Cgroups = append(r.Cgroups, s.cgroupName[cg])
	}
	r.Files = s.files
	for _, k := range kinds {
		sort.Strings(*k.items(r))
	}
	return r
}
