package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/stressrun"
	"github.com/orchd/orchd/stress"
)

func newStressCmd() *cobra.Command {
	var o stressrun.Options
	cmd := &cobra.Command{
		Use:   "stress",
		Short: "Grow / all running / fell / zero leaks, N times; per-phase timings and leak counts",
		Long: `Runs stress cycles with orchd (containerd runtime, orchdi platform) against a
private containerd (or --address): each cycle grows --services probe containers from
a template in stress/, waits until all run, fells them and inspects the namespace
for leaks. Exits 0 only when every cycle had all services running and zero leaks.

After each cycle it samples containerd's RSS, fds, threads and goroutines and the
host's mounts, cgroups and processes, fits a least-squares line per metric over the
last 150 cycles (a shorter run: the cycles after its first quarter, host-wide counts
shown but not judged), prints the slopes, and fails when one exceeds its bound (runs
of at least 20 cycles). --kill-random SIGKILLs one random supervisor or leaf per
cycle before the fell.
Templates: ` + strings.Join(stress.Names(), ", ") + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return stressrun.Run(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Cycles, "cycles", 5, "cycles to run")
	f.IntVar(&o.Services, "services", 6, "services per cycle")
	f.BoolVar(&o.JSON, "json", false, "print the result as JSON")
	f.StringVar(&o.Address, "address", "", "use this containerd socket instead of starting a private daemon")
	f.StringVar(&o.Root, "root", "", "with --address: the daemon's root dir (mount leak checks)")
	f.StringVar(&o.State, "state", "", "with --address: the daemon's state dir (mount and bundle leak checks)")
	containerdFlag(f, &o.Toolchain)
	f.StringVar(&o.Orchd, "orchd", "", "a prebuilt CGO_ENABLED=0 orchd (default: build ./cmd/orchd)")
	f.StringVar(&o.Template, "template", "probes", "Orchfile template from stress/ ("+strings.Join(stress.Names(), ", ")+")")
	f.StringVar(&o.Namespace, "namespace", "", "namespace (default: stress-<random>)")
	f.BoolVar(&o.KillRandom, "kill-random", false, "SIGKILL one random supervisor or leaf per cycle, once all run, before the fell")
	f.Uint64Var(&o.Seed, "seed", 0, "seed of --kill-random (default: random, printed)")
	f.IntVar(&o.DaemonPid, "daemon-pid", 0, "with --address: containerd's pid (to sample its RSS, fds and threads)")
	f.StringVar(&o.DebugAddress, "debug-address", "", "with --address: containerd's debug socket (to sample its goroutines)")
	f.DurationVar(&o.Duration, "duration", 0, "start no cycle after this long (0: no limit); the report says how many of --cycles ran")
	return cmd
}
