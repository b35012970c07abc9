package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/orchd/orchd/harness/cycles"
	"github.com/orchd/orchd/harness/leaks"
)

// snapshotter is the one orchd's containerd runtime uses by default.
const snapshotter = "overlayfs"

// probeArgs: the probe exits 0 on SIGTERM.
var probeArgs = []string{"/probe", "term-exit"}

const (
	startTimeout = 5 * time.Minute
	stopTimeout  = 2 * time.Minute
	// stopGrace is what orchd's leaf allows a task after SIGTERM with the
	// bench's TIMEOUT_STOP 2s before SIGKILL (2s less a third). Every
	// contender uses it: a probe killed before it installed its SIGTERM
	// handler is PID 1 and ignores the signal.
	stopGrace = 2*time.Second - 2*time.Second/3
)

// round is what one contender measured for N containers.
type round struct {
	up, down time.Duration
	daemonKB int64      // containerd's RSS with the N tasks running
	mem      *memSample // orchd's processes (orchd rounds only)
}

// contender runs N containers to RUNNING and tears them down again.
type contender struct {
	name string
	run  func(ctx context.Context, n int) (round, error)
}

func (r *runner) orchdC() contender  { return contender{"orchd", r.orchdRound} }
func (r *runner) floorC() contender  { return contender{FloorName, r.floorRound} }
func (r *runner) ctrParC() contender { return contender{CtrParName, r.ctrParRound} }
func (r *runner) ctrSeqC() contender { return contender{CtrSeqName, r.ctrSeqRound} }

// rotate returns cs starting at index i mod len, so no contender always runs first.
func rotate(cs []contender, i int) []contender {
	k := i % len(cs)
	return append(append([]contender(nil), cs[k:]...), cs[:k]...)
}

// orchdRound grows n services, waits for n task starts, samples memory, then
// fells (timed to fell's return) and checks for leaks (not timed).
func (r *runner) orchdRound(ctx context.Context, n int) (rd round, err error) {
	g := r.newGrove(fmt.Sprintf("o%d", r.next()))
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "SERVICE s%02d\nFROM %s\nCMD %s\nTIMEOUT_STOP 2s\n\n", i, r.opts.Image.Ref, strings.Join(probeArgs[1:], " "))
	}
	if err := g.write(b.String()); err != nil {
		return rd, err
	}
	defer func() {
		if err != nil {
			g.fell(context.WithoutCancel(ctx))
		}
	}()
	w, err := r.watchNS(ctx, r.ns.orchd)
	if err != nil {
		return rd, err
	}
	defer w.close()
	mark := w.count()
	t0 := time.Now()
	if _, err := g.orchd(ctx, "grow"); err != nil {
		return rd, err
	}
	if err := w.waitStarts(ctx, mark, n, startTimeout); err != nil {
		return rd, fmt.Errorf("orchd grow: %w", err)
	}
	rd.up = time.Since(t0)
	rd.mem = sampleProcs(g.state)
	rd.daemonKB = rssKB(r.opts.DaemonPid)
	t0 = time.Now()
	if err := g.fell(ctx); err != nil {
		return rd, err
	}
	rd.down = time.Since(t0)
	after, err := leaks.Inspect(ctx, r.leakTarget(g.state))
	if err != nil {
		return rd, err
	}
	if rep := leaks.Diff(r.baseline, after); !rep.Empty() {
		return rd, fmt.Errorf("orchd fell left leaks:\n%s", rep)
	}
	return rd, nil
}

// floorRound is the in-process floor: this process's one client creates and
// starts n containers concurrently with orchd's container options (overlayfs,
// host network, hosts and resolv.conf, stdio through FIFOs), then kills
// (SIGTERM) and deletes them concurrently.
func (r *runner) floorRound(ctx context.Context, n int) (rd round, err error) {
	ctx = namespaces.WithNamespace(ctx, r.ns.floor)
	w, err := r.watchNS(ctx, r.ns.floor)
	if err != nil {
		return rd, err
	}
	defer w.close()
	fifos := r.dir(fmt.Sprintf("fifo%d", r.next()))
	if err := os.MkdirAll(fifos, 0o700); err != nil {
		return rd, err
	}
	defer os.RemoveAll(fifos)
	type live struct {
		c     containerd.Container
		t     containerd.Task
		exitC <-chan containerd.ExitStatus
	}
	lives := make([]live, n)
	base := r.next()
	mark := w.count()
	t0 := time.Now()
	err = parallel(n, func(i int) error {
		id := fmt.Sprintf("f%d-%02d", base, i)
		img, err := r.client.GetImage(ctx, r.opts.Image.Ref)
		if err != nil {
			return err
		}
		c, err := r.client.NewContainer(ctx, id,
			containerd.WithImage(img),
			containerd.WithSnapshotter(snapshotter),
			containerd.WithNewSnapshot(id, img),
			containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithHostname(id),
				oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf,
				oci.WithProcessArgs(probeArgs...)))
		if err != nil {
			return err
		}
		lives[i].c = c
		t, err := c.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, io.Discard, io.Discard), cio.WithFIFODir(fifos)))
		if err != nil {
			return err
		}
		lives[i].t = t
		if lives[i].exitC, err = t.Wait(ctx); err != nil {
			return err
		}
		return t.Start(ctx)
	})
	if err == nil {
		err = w.waitStarts(ctx, mark, n, startTimeout)
	}
	rd.up = time.Since(t0)
	rd.daemonKB = rssKB(r.opts.DaemonPid)
	t1 := time.Now()
	// Tear down whatever exists even after a failed start.
	derr := parallel(n, func(i int) error {
		l := lives[i]
		if l.t != nil {
			if err := l.t.Kill(ctx, syscall.SIGTERM); err == nil && l.exitC != nil {
				select {
				case <-l.exitC:
				case <-time.After(stopGrace):
					if err := l.t.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil {
						return err
					}
					select {
					case <-l.exitC:
					case <-time.After(stopTimeout):
						return fmt.Errorf("%s did not exit after SIGKILL", l.c.ID())
					}
				}
			}
			if _, err := l.t.Delete(ctx, containerd.WithProcessKill); err != nil {
				return err
			}
		}
		if l.c != nil {
			return l.c.Delete(ctx, containerd.WithSnapshotCleanup)
		}
		return nil
	})
	rd.down = time.Since(t1)
	if err := errors.Join(err, derr); err != nil {
		return rd, fmt.Errorf("in-process floor: %w", err)
	}
	return rd, r.expectEmpty(ctx, r.ns.floor)
}

// ctrParRound runs n `ctr run -d` processes at once; teardown runs n
// concurrent kill, wait, task rm, container rm sequences.
func (r *runner) ctrParRound(ctx context.Context, n int) (rd round, err error) {
	return r.ctrRound(ctx, n, true)
}

// ctrSeqRound is the script users write: one `ctr run -d` after another, then
// kill each, wait for all to exit, remove each.
func (r *runner) ctrSeqRound(ctx context.Context, n int) (rd round, err error) {
	return r.ctrRound(ctx, n, false)
}

func (r *runner) ctrRound(ctx context.Context, n int, concurrent bool) (rd round, err error) {
	w, err := r.watchNS(ctx, r.ns.ctr)
	if err != nil {
		return rd, err
	}
	defer w.close()
	ids := make([]string, n)
	base := r.next()
	for i := range ids {
		ids[i] = fmt.Sprintf("c%d-%02d", base, i)
	}
	each := func(f func(i int) error) error {
		if concurrent {
			return parallel(n, f)
		}
		for i := range ids {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	mark := w.count()
	t0 := time.Now()
	err = each(func(i int) error {
		return r.ctr(ctx, append([]string{"run", "-d", "--net-host", "--snapshotter", snapshotter, r.opts.Image.Ref, ids[i]}, probeArgs...)...)
	})
	if err == nil {
		err = w.waitStarts(ctx, mark, n, startTimeout)
	}
	rd.up = time.Since(t0)
	rd.daemonKB = rssKB(r.opts.DaemonPid)
	if err != nil {
		r.ctrCleanup(context.WithoutCancel(ctx), ids)
		return rd, err
	}
	t1 := time.Now()
	rm := func(i int) error {
		if err := r.ctr(ctx, "task", "rm", ids[i]); err != nil {
			return err
		}
		return r.ctr(ctx, "containers", "rm", ids[i])
	}
	// SIGTERM, the grace orchd gives, then SIGKILL.
	stop := func(i int, deadline time.Time) error {
		if w.waitExit(ctx, ids[i], time.Until(deadline)) == nil {
			return nil
		}
		if err := r.ctr(ctx, "task", "kill", "-s", "SIGKILL", "--all", ids[i]); err != nil {
			return err
		}
		return w.waitExit(ctx, ids[i], stopTimeout)
	}
	if concurrent {
		err = parallel(n, func(i int) error {
			if err := r.ctr(ctx, "task", "kill", ids[i]); err != nil {
				return err
			}
			if err := stop(i, time.Now().Add(stopGrace)); err != nil {
				return err
			}
			return rm(i)
		})
	} else {
		err = each(func(i int) error { return r.ctr(ctx, "task", "kill", ids[i]) })
		deadline := time.Now().Add(stopGrace)
		if err == nil {
			err = each(func(i int) error { return stop(i, deadline) })
		}
		if err == nil {
			err = each(rm)
		}
	}
	rd.down = time.Since(t1)
	if err != nil {
		r.ctrCleanup(context.WithoutCancel(ctx), ids)
		return rd, err
	}
	return rd, r.expectEmpty(ctx, r.ns.ctr)
}

// ctrCleanup removes what a failed ctr round left, so the next round starts clean.
func (r *runner) ctrCleanup(ctx context.Context, ids []string) {
	for _, id := range ids {
		_ = r.ctr(ctx, "task", "rm", "-f", id)
		_ = r.ctr(ctx, "containers", "rm", id)
	}
}

// expectEmpty checks (untimed) that a teardown left no container behind.
func (r *runner) expectEmpty(ctx context.Context, ns string) error {
	cs, err := r.client.Containers(namespaces.WithNamespace(ctx, ns))
	if err != nil {
		return err
	}
	if len(cs) > 0 {
		return fmt.Errorf("%d containers left in %s after teardown", len(cs), ns)
	}
	return nil
}

func (r *runner) ctr(ctx context.Context, args ...string) error {
	full := append([]string{"--address", r.opts.Address, "--namespace", r.ns.ctr}, args...)
	out, err := exec.CommandContext(ctx, r.opts.Ctr, full...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// parallel runs f(0..n-1) concurrently and joins their errors.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f(i) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// grove is one orchd project + state dir in the orchd namespace.
type grove struct {
	r       *runner
	project string
	state   string
}

func (r *runner) newGrove(name string) *grove {
	base := r.dir(name)
	return &grove{r: r, project: filepath.Join(base, "p"), state: filepath.Join(base, "s")}
}

func (g *grove) write(orchfile string) error {
	if err := os.MkdirAll(g.project, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(g.project, "Orchfile"), []byte(orchfile), 0o600)
}

// orchd runs one orchd subcommand through the harness's one CLI driver
// (output to files: a supervisor that inherits a pipe cannot hold it open).
func (g *grove) orchd(ctx context.Context, sub string, args ...string) ([]byte, error) {
	cli := cycles.CLI{Orchd: g.r.opts.Orchd, Address: g.r.opts.Address, Namespace: g.r.ns.orchd, StateDir: g.state, ProjectDir: g.project}
	res, err := cli.Run(ctx, sub, append(args, "-q")...)
	if err != nil {
		return nil, err
	}
	return []byte(res.Stdout), res.Err()
}

func (g *grove) fell(ctx context.Context) error {
	_, err := g.orchd(ctx, "fell")
	return err
}
