// Package stressrun runs `orchd-harness stress`: grow / all running / fell /
// zero leaks cycles of a stress/ template against a private (or given)
// containerd, with per-phase timings and leak counts.
package stressrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/orchd/orchd/harness/cycles"
	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/leaks"
	"github.com/orchd/orchd/harness/soak"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/orchd/container"
	"github.com/orchd/orchd/stress"
)

// Options are the stress command's settings.
type Options struct {
	Cycles, Services int
	JSON             bool          // print the result as JSON
	Address          string        // an existing containerd socket ("" = start a private one)
	Root, State      string        // with Address: the daemon's root and state dirs
	Toolchain        string        // toolchain of the private daemon
	Orchd            string        // a prebuilt static orchd ("" = build one)
	Template         string        // Orchfile template from stress/
	Namespace        string        // "" = stress-<random>
	KillRandom       bool          // SIGKILL one supervisor or leaf per cycle
	Seed             uint64        // of KillRandom (0 = random, printed)
	DaemonPid        int           // with Address: containerd's pid, to sample it
	DebugAddress     string        // with Address: containerd's debug socket (goroutines)
	Duration         time.Duration // start no cycle after this long (0 = no limit)
}

// Run runs the cycles, prints the table (or JSON) to stdout and progress to
// stderr, and fails unless every cycle had all services running and zero leaks.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) (err error) {
	if o.Cycles < 1 || o.Services < 1 {
		return errors.New("stress: --cycles and --services must be positive")
	}
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	work, err := os.MkdirTemp("", "orchd-stress-")
	if err != nil {
		return fmt.Errorf("stress: %w", err)
	}
	defer os.RemoveAll(work)

	addr, root, state := o.Address, o.Root, o.State
	sampler := soak.Sampler{Pid: func() int { return o.DaemonPid }, DebugSocket: o.DebugAddress}
	if addr == "" {
		if os.Geteuid() != 0 {
			return errors.New("stress: a private containerd needs root")
		}
		fmt.Fprintf(stderr, "toolchain: %s\n", toolchain.Rule(o.Toolchain))
		tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: o.Toolchain, Progress: stderr})
		if err != nil {
			return fmt.Errorf("stress: %w (install: %s)", err, toolchain.AptInstall)
		}
		progress("daemon: starting a private containerd %s (%s)", tc.Containerd.Version, tc.Name)
		d, err := daemon.Start(ctx, tc, daemon.Options{Debug: true})
		if err != nil {
			return fmt.Errorf("stress: %w", err)
		}
		defer func() {
			if serr := d.Stop(context.WithoutCancel(ctx)); serr != nil {
				err = errors.Join(err, serr)
			}
		}()
		addr, root, state = d.Address(), d.Root(), d.State()
		sampler = soak.Sampler{Pid: d.Pid, DebugSocket: d.Address() + ".debug"}
	}

	orchd := o.Orchd
	modRoot, merr := gobuild.ModuleRoot(ctx)
	if orchd == "" {
		if merr != nil {
			return fmt.Errorf("stress: %w (or pass --orchd)", merr)
		}
		progress("build: orchd and orchd-supervise (CGO_ENABLED=0)")
		if orchd, err = gobuild.Orchd(ctx, modRoot, work); err != nil {
			return fmt.Errorf("stress: %w", err)
		}
	}
	progress("build: probe image")
	set, err := images.Build(ctx, filepath.Join(work, "images"), images.WithNames(images.Probe))
	if err != nil {
		return fmt.Errorf("stress: %w", err)
	}
	probe, err := set.Get(images.Probe)
	if err != nil {
		return err
	}
	image := container.LayoutScheme + probe.Dir

	ns := o.Namespace
	if ns == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		ns = "stress-" + hex.EncodeToString(b)
	}
	text, err := stress.Render(o.Template, stress.Data{Image: image, Services: o.Services, Name: ns})
	if err != nil {
		return err
	}
	target := leaks.Target{Address: addr, Namespace: ns, Root: root, State: state, OrchdStateDir: filepath.Join(work, "state")}
	opts := cycles.Options{
		CLI: cycles.CLI{
			Orchd:      orchd,
			Address:    addr,
			Namespace:  ns,
			StateDir:   filepath.Join(work, "state"),
			ProjectDir: filepath.Join(work, "project"),
			Home:       filepath.Join(work, "home"),
		},
		Services: o.Services,
		Cycles:   o.Cycles,
		Image:    image,
		Orchfile: text,
		Inspect: func(ctx context.Context) (int, string, error) {
			r, err := leaks.Inspect(ctx, target)
			if err != nil {
				return 0, "", err
			}
			return r.Count(), r.String(), nil
		},
		Progress: stderr,
	}
	if o.Duration > 0 {
		opts.Until = time.Now().Add(o.Duration)
	}
	var samples []soak.Sample
	opts.AfterCycle = func(ctx context.Context, c *cycles.Cycle) error {
		if o.Address != "" && o.DaemonPid == 0 {
			return nil
		}
		smp, err := sampler.Sample(ctx, c.N)
		if err != nil {
			return err
		}
		samples = append(samples, smp)
		progress("cycle %d: %s", c.N, sampleLine(smp))
		return nil
	}
	if o.KillRandom {
		seed := o.Seed
		if seed == 0 {
			seed = mrand.Uint64()
		}
		progress("stress: --kill-random seed %d (replay with --seed %d)", seed, seed)
		opts.KillRandom = mrand.New(mrand.NewPCG(seed, 0))
	}
	progress("stress: %d cycles x %d services (template %s, namespace %s, containerd %s)", o.Cycles, o.Services, o.Template, ns, addr)
	res, runErr := cycles.Run(ctx, opts)
	// Whatever a failed cycle left is removed, so the daemon (or a shared one) stays clean.
	if res == nil || !res.OK() {
		if cerr := leaks.Clean(context.WithoutCancel(ctx), target); cerr != nil {
			progress("stress: clean: %v", cerr)
		}
	}
	if runErr != nil && (res == nil || len(res.Cycles) == 0) {
		return fmt.Errorf("stress: %w", runErr)
	}
	// An interrupted run still reports the cycles it completed.
	verdict := soak.Judge(samples, soak.DefaultBounds())
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report{Result: res, Samples: samples, Slopes: verdict}); err != nil {
			return err
		}
	} else {
		res.WriteTable(stdout)
		if len(samples) > 0 {
			verdict.WriteTable(stdout)
		} else {
			fmt.Fprintln(stdout, "no resource samples (with --address, pass --daemon-pid)")
		}
	}
	if runErr != nil {
		fmt.Fprintf(stdout, "ran %d of %d cycles, then: %v\n", len(res.Cycles), o.Cycles, runErr)
		return fmt.Errorf("stress: %w", runErr)
	}
	if len(res.Cycles) < o.Cycles {
		fmt.Fprintf(stdout, "ran %d of %d cycles (--duration %s reached)\n", len(res.Cycles), o.Cycles, o.Duration)
	}
	if !res.OK() {
		return fmt.Errorf("stress: %d of %d cycles ran; not every cycle had all services running and zero leaks", len(res.Cycles), o.Cycles)
	}
	if len(samples) >= minJudged && !verdict.OK() {
		return fmt.Errorf("stress: a resource grew: a slope above its bound (see the table)")
	}
	return nil
}

// minJudged is the shortest run whose slopes decide the exit status; shorter
// runs print them only (a line through a handful of cycles is mostly warm-up).
const minJudged = 20

// report is --json's output.
type report struct {
	*cycles.Result
	Samples []soak.Sample `json:"samples"`
	Slopes  soak.Report   `json:"slopes"`
}

func sampleLine(s soak.Sample) string {
	var parts []string
	for _, m := range soak.Names() {
		parts = append(parts, fmt.Sprintf("%s=%d", m, s.Values[m]))
	}
	return strings.Join(parts, " ")
}
