package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/inception"
)

func newInceptionCmd() *cobra.Command {
	var o inception.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inception",
		Short: "Run the suites inside a microVM: containerd and orchd nested under orchd's vm runtime",
		Long: `inception stages the containerd toolchain (with its shared libraries) and a
kernel, builds the inception image and a tools dir (containerd, shim, runc, a
static orchd, the compiled suites, fixture images), and boots it with
orchd --runtime vm --platform orchdi grow (MEMORY/CPUS from the flags, the
tools at /opt/tools over virtio-9p). Inside, a driver starts containerd and runs
the suites with the inner orchd (containerd runtime): by default the in-VM checks
and the core suites (fanout, oneshot, crashrestart, specalign, leak) without the
specs labelled slow, every deadline stretched by --time-scale for TCG. Each suite
writes its JUnit, JSON, log and environment files into a second 9p share; they
are copied to --report-dir with a merged junit.xml and summary.json, as
"orchd-harness suites" writes them. The console is progress only: no console
line and no report byte for --stall fails the run with the console's tail. The
grove is felled at the end. Exit status 0 only when every suite's report shows
it passed and nothing leaked inside or outside the VM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Progress = cmd.ErrOrStderr()
			if o.Containerd == "" {
				fmt.Fprintf(o.Progress, "toolchain: --containerd not set: %s inside the VM (the VM boots Debian's; the pinned %s needs --containerd %s)\n", toolchain.System, toolchain.Pinned, toolchain.Pinned)
			} else {
				fmt.Fprintf(o.Progress, "toolchain: %s\n", toolchain.Rule(o.Containerd))
			}
			res, err := inception.Run(cmd.Context(), o)
			if res != nil {
				// A failed run's result still says what ran and why it failed.
				if werr := inception.Show(cmd.OutOrStdout(), res, asJSON, o.ReportDir); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return err
			}
			if !res.Passed() {
				return errors.New("inception failed")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.Suites, "suites", inception.DefaultSuites(), "suites to run inside the VM (names of dirs under suites/, e.g. fanout,oneshot)")
	f.StringVar(&o.Init, "init", inception.InitOrchd, "the guest's PID 1: orchd (its own init runs the driver) or systemd (Debian's systemd runs the driver as a unit; suites can use --platform systemd)")
	f.StringVar(&o.LabelFilter, "label-filter", inception.DefaultLabelFilter, "Ginkgo label filter for the inner suites (\"\" runs the slow specs too)")
	f.StringVar(&o.OCIRuntime, "oci-runtime", "runc", "OCI runtime of the inner containerd's runc shim: runc or crun (copied from the host)")
	f.Float64Var(&o.TimeScale, "time-scale", inception.DefaultTimeScale, "stretch every suite deadline by this factor (ORCHD_TIME_SCALE inside)")
	f.IntVar(&o.Jobs, "jobs", inception.DefaultJobs, "suites at once inside the VM (leak always runs alone, last)")
	f.DurationVar(&o.Stall, "stall", inception.DefaultStall, "fail when no console line and no report byte arrive for this long")
	f.StringVar(&o.Containerd, "containerd", "", `toolchain staged into the VM: "system" (default) or a 2.x version`)
	f.StringVar(&o.Memory, "memory", inception.DefaultMemory, "MEMORY of the VM")
	f.StringVar(&o.CPUs, "cpus", inception.DefaultCPUs, "CPUS of the VM")
	f.DurationVar(&o.Timeout, "timeout", inception.DefaultTimeout, "bound on the VM run")
	f.DurationVar(&o.SuiteTimeout, "suite-timeout", inception.DefaultSuiteTimeout, "bound on each inner suite (before --time-scale)")
	f.StringVar(&o.Work, "work", "", "work dir (default: a temp dir, removed after a passing run)")
	f.BoolVar(&o.Keep, "keep", false, "keep the temp work dir after a failing run")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON instead of the table")
	f.StringVar(&o.ReportDir, "report-dir", "", "write each inner suite's JUnit/JSON/log/env files, junit.xml, summary.json and inception.json here")
	return cmd
}
