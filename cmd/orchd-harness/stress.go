package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/cycles"
	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/gobuild"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/leaks"
	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/orchd/container"
	"github.com/orchd/orchd/stress"
)

type stressOptions struct {
	cycles, services int
	asJSON           bool
	address          string
	root, state      string
	toolchain        string
	orchd            string
	template         string
	namespace        string
	keep             bool
}

func newStressCmd() *cobra.Command {
	var o stressOptions
	cmd := &cobra.Command{
		Use:   "stress",
		Short: "Grow / all running / fell / zero leaks, N times; per-phase timings and leak counts",
		Long: `Runs stress cycles with orchd (containerd runtime, orchdi platform) against a
private containerd (or --address): each cycle grows --services probe containers from
a template in stress/, waits until all run, fells them and inspects the namespace
for leaks. Exits 0 only when every cycle had all services running and zero leaks.
Templates: ` + strings.Join(stress.Names(), ", ") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStress(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.cycles, "cycles", 5, "cycles to run")
	f.IntVar(&o.services, "services", 6, "services per cycle")
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	f.StringVar(&o.address, "address", "", "use this containerd socket instead of starting a private daemon")
	f.StringVar(&o.root, "root", "", "with --address: the daemon's root dir (mount leak checks)")
	f.StringVar(&o.state, "state", "", "with --address: the daemon's state dir (mount and bundle leak checks)")
	containerdFlag(f, &o.toolchain)
	f.StringVar(&o.orchd, "orchd", "", "a prebuilt CGO_ENABLED=0 orchd (default: build ./cmd/orchd)")
	f.StringVar(&o.template, "template", "probes", "Orchfile template from stress/ ("+strings.Join(stress.Names(), ", ")+")")
	f.StringVar(&o.namespace, "namespace", "", "namespace (default: stress-<random>)")
	return cmd
}

func runStress(ctx context.Context, o stressOptions, stdout, stderr io.Writer) (err error) {
	if o.cycles < 1 || o.services < 1 {
		return errors.New("stress: --cycles and --services must be positive")
	}
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	work, err := os.MkdirTemp("", "orchd-stress-")
	if err != nil {
		return fmt.Errorf("stress: %w", err)
	}
	defer os.RemoveAll(work)

	addr, root, state := o.address, o.root, o.state
	if addr == "" {
		if os.Geteuid() != 0 {
			return errors.New("stress: a private containerd needs root")
		}
		fmt.Fprintf(stderr, "toolchain: %s\n", toolchain.Rule(o.toolchain))
		tc, err := toolchain.Resolve(ctx, toolchain.Options{Containerd: o.toolchain, Progress: stderr})
		if err != nil {
			return fmt.Errorf("stress: %w (install: %s)", err, toolchain.AptInstall)
		}
		progress("daemon: starting a private containerd %s (%s)", tc.Containerd.Version, tc.Name)
		d, err := daemon.Start(ctx, tc, daemon.Options{})
		if err != nil {
			return fmt.Errorf("stress: %w", err)
		}
		defer func() {
			if serr := d.Stop(context.WithoutCancel(ctx)); serr != nil {
				err = errors.Join(err, serr)
			}
		}()
		addr, root, state = d.Address(), d.Root(), d.State()
	}

	orchd := o.orchd
	modRoot, merr := images.FindModuleRoot(ctx)
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

	ns := o.namespace
	if ns == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		ns = "stress-" + hex.EncodeToString(b)
	}
	text, err := stress.Render(o.template, stress.Data{Image: image, Services: o.services, Name: ns})
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
		Services: o.services,
		Cycles:   o.cycles,
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
	progress("stress: %d cycles x %d services (template %s, namespace %s, containerd %s)", o.cycles, o.services, o.template, ns, addr)
	res, runErr := cycles.Run(ctx, opts)
	// Whatever a failed cycle left is removed, so the daemon (or a shared one) stays clean.
	if res == nil || !res.OK() {
		if cerr := leaks.Clean(context.WithoutCancel(ctx), target); cerr != nil {
			progress("stress: clean: %v", cerr)
		}
	}
	if runErr != nil {
		return fmt.Errorf("stress: %w", runErr)
	}
	if o.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		res.WriteTable(stdout)
	}
	if !res.OK() {
		return fmt.Errorf("stress: %d of %d cycles ran; not every cycle had all services running and zero leaks", len(res.Cycles), o.cycles)
	}
	return nil
}
