package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/inception"
)

func newInceptionCmd() *cobra.Command {
	var o inception.Options
	var asJSON bool
	var reportDir string
	cmd := &cobra.Command{
		Use:   "inception",
		Short: "Run the suites inside a microVM: containerd and orchd nested under orchd's vm runtime",
		Long: `inception stages the containerd toolchain (with its shared libraries) and a
kernel, builds the inception image and a tools dir (containerd, shim, runc, a
static orchd, the compiled suites, fixture images), and boots it with
orchd --runtime vm --platform orchdi grow (MEMORY/CPUS from the flags, the
tools at /opt/tools over virtio-9p). Inside, a driver starts containerd and runs
the suites with the inner orchd (containerd runtime); results stream back over
the console. The grove is felled at the end. Exit status 0 only when every suite
passed and nothing leaked inside or outside the VM.`,
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
				b, _ := json.MarshalIndent(res, "", "  ")
				if asJSON {
					fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				} else {
					inception.PrintTable(cmd.OutOrStdout(), res)
				}
				if reportDir != "" {
					werr := os.MkdirAll(reportDir, 0o755)
					if werr == nil {
						werr = os.WriteFile(filepath.Join(reportDir, "inception.json"), append(b, '\n'), 0o644)
					}
					if werr != nil && err == nil {
						err = werr
					}
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
	f.StringVar(&o.LabelFilter, "label-filter", "", "Ginkgo label filter for the inner suites")
	f.StringVar(&o.Containerd, "containerd", "", `toolchain staged into the VM: "system" (default) or a 2.x version`)
	f.StringVar(&o.Memory, "memory", inception.DefaultMemory, "MEMORY of the VM")
	f.StringVar(&o.CPUs, "cpus", inception.DefaultCPUs, "CPUS of the VM")
	f.DurationVar(&o.Timeout, "timeout", inception.DefaultTimeout, "bound on the VM run")
	f.DurationVar(&o.SuiteTimeout, "suite-timeout", 5*time.Minute, "bound on each inner suite")
	f.StringVar(&o.Work, "work", "", "work dir (default: a temp dir, removed after a passing run)")
	f.BoolVar(&o.Keep, "keep", false, "keep the temp work dir after a failing run")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON instead of the table")
	f.StringVar(&reportDir, "report-dir", "", "also write the result as inception.json into this dir")
	return cmd
}
