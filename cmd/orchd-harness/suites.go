package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/suiterun"
)

func newSuitesCmd() *cobra.Command {
	var o suiterun.Options
	cmd := &cobra.Command{
		Use:   "suites",
		Short: "Run the conformance suites against one private containerd; per-suite table, JUnit + JSON reports",
		Long: `Stages the containerd toolchain, starts ONE private daemon, builds orchd and the
fixture images once, compiles each suite under suites/ with go test -c and runs it
against the daemon. Writes <suite>.junit.xml, <suite>.json and <suite>.log per suite
plus summary.json into --report-dir, and exits non-zero when any spec failed.
With --matrix the whole run repeats for every staged toolchain (report names get
the toolchain as a suffix).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return suiterun.Run(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ReportDir, "report-dir", "reports", "where reports and logs are written")
	f.StringSliceVar(&o.Suites, "suites", nil, "suites to run (default: every suite under suites/ except "+strings.Join(suiterun.ExcludedByDefault, ",")+")")
	f.StringVar(&o.LabelFilter, "label-filter", "", "Ginkgo label filter, e.g. '!slow'")
	f.BoolVar(&o.Matrix, "matrix", false, "run against every staged toolchain")
	f.StringVar(&o.Toolchain, "toolchain", "", `toolchain for the daemon: "system" or a 2.x version (default: the pinned 2.x when staged, else system)`)
	// One at a time by default: the leak inspector's mount check covers the
	// daemon's whole root, so a suite running alongside can show its
	// transient unpack mounts in another suite's namespace check.
	f.IntVar(&o.Jobs, "jobs", 1, "suites run at once against the shared daemon (>1 can make daemon-wide mount checks see another suite's transient mounts; "+strings.Join(suiterun.Alone, ", ")+" always runs alone, last)")
	f.DurationVar(&o.Timeout, "timeout", 30*time.Minute, "per-suite timeout")
	return cmd
}
