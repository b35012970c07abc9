package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/orchd/orchd/harness/suiterun"
	"github.com/orchd/orchd/harness/toolchain"
)

func newSuitesCmd() *cobra.Command {
	var o suiterun.Options
	cmd := &cobra.Command{
		Use:   "suites [flags] [-- GINKGO-FLAGS...]",
		Short: "Run the conformance suites against one private containerd; per-suite table, JUnit + JSON reports",
		Long: `Stages the containerd toolchain, starts ONE private daemon, builds orchd and the
fixture images once, compiles each suite under suites/ with go test -c and runs it
against the daemon. Writes <suite>.junit.xml, <suite>.json and <suite>.log per suite
plus summary.json into --report-dir, and exits non-zero when any spec failed.
With --matrix the whole run repeats for every staged toolchain (report names get
the toolchain as a suffix). Each spec's result is printed as it finishes; a merged
junit.xml is written beside the per-suite reports.

--address runs against an existing containerd instead (no staging, no private
daemon); every spec still works in namespaces of its own, and the leak checks look
only at those. Arguments after -- go to every suite binary as Ginkgo flags
(-ginkgo.v, -ginkgo.seed 3). A bad --label-filter, --focus or --skip fails before
anything is staged or built.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if dash := cmd.ArgsLenAtDash(); (dash < 0 && len(args) > 0) || dash > 0 {
				return fmt.Errorf("unexpected arguments %q: Ginkgo flags go after --, e.g. suites -- --ginkgo.v", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.GinkgoArgs = args
			return suiterun.Run(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ReportDir, "report-dir", "reports", "where reports and logs are written")
	f.StringSliceVar(&o.Suites, "suites", nil, "suites to run (default: every suite under suites/ except "+strings.Join(suiterun.ExcludedByDefault, ",")+")")
	f.StringVar(&o.LabelFilter, "label-filter", "", "Ginkgo label filter, e.g. '!slow'")
	f.BoolVar(&o.Matrix, "matrix", false, "run against both toolchains, Debian's 1.6 (system) and the pinned 2.x; both must be staged")
	containerdFlag(f, &o.Toolchain)
	f.StringVar(&o.OCIRuntime, "oci-runtime", "", "runc-compatible binary containerd's runc shim runs containers with: runc, crun or runsc (default runc); orchd gets it as ORCHD_OCI_RUNTIME")
	f.StringArrayVar(&o.Focus, "focus", nil, "run only specs whose text matches this regexp (repeatable)")
	f.StringArrayVar(&o.Skip, "skip", nil, "skip specs whose text matches this regexp (repeatable)")
	f.BoolVar(&o.FailFast, "fail-fast", false, "stop a suite at its first failed spec")
	f.StringVar(&o.Address, "address", "", "run against this existing containerd socket instead of a private daemon")
	// Suites share the daemon side by side: every object a leak check looks
	// at is attributed to a namespace (API objects, the shims' -namespace,
	// cgroups under /<ns>/, task mounts by path, transient unpack mounts by
	// their snapshot), so one suite's work is never another's leak.
	f.IntVar(&o.Jobs, "jobs", runtime.NumCPU(), "suites run at once against the shared daemon ("+strings.Join(suiterun.Alone, ", ")+" always runs alone, last)")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "per-suite timeout")
	return cmd
}

// containerdFlag binds --containerd, the toolchain flag every verb shares
// (--toolchain is kept as a deprecated alias).
func containerdFlag(f *pflag.FlagSet, v *string) {
	f.StringVar(v, "containerd", "", `toolchain: "system" or a 2.x version such as `+toolchain.Pinned+` (default: `+toolchain.Rule("")+`)`)
	f.StringVar(v, "toolchain", "", "use --containerd")
	f.MarkDeprecated("toolchain", "use --containerd")
}
