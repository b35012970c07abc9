package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/matrix"
)

func newMatrixCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "matrix [--report-dir D] [--json]",
		Short: "The conformance matrix (suite x toolchain x OCI runtime x host/vm) from the suites' report files",
		Long: `Reads every <suite>-<stack>.env.json in --report-dir and its subdirs (written by the suites with
ORCHD_REPORT_DIR, by orchd-harness suites and, for the VM, by orchd-harness inception)
and the Ginkgo report beside each, writes matrix.md and matrix.json into the same dir
and prints the markdown table (or the JSON with --json). Exits non-zero when a cell
failed, has no report, or passed no spec.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := matrix.Read(dir)
			if m == nil {
				return err
			}
			if werr := m.Write(dir); werr != nil {
				return errors.Join(err, werr)
			}
			if asJSON {
				err = errors.Join(err, m.WriteJSON(cmd.OutOrStdout()))
			} else {
				err = errors.Join(err, m.WriteMarkdown(cmd.OutOrStdout()))
			}
			if err == nil && !m.OK {
				err = errors.New("matrix: a cell failed")
			}
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "report-dir", "reports", "the dir holding the suites' report files")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of markdown")
	return cmd
}
