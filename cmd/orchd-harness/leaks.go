package main

import (
	"fmt"
	"os"

	"github.com/orchd/orchd/harness/leaks"
	"github.com/orchd/orchd/harness/settings"
	"github.com/spf13/cobra"
)

// errLeaked makes the command exit 1 after the report was printed.
type errLeaked struct{ n int }

func (e errLeaked) Error() string { return fmt.Sprintf("%d leaked objects", e.n) }

func newLeaksCmd() *cobra.Command {
	var (
		t      leaks.Target
		asJSON bool
		clean  bool
	)
	cmd := &cobra.Command{
		Use:   "leaks",
		Short: "Report what a namespace leaked in a containerd (exit 1 when anything did)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if t.Address == "" {
				t.Address = os.Getenv(settings.EnvSocket)
			}
			if clean {
				if err := leaks.Clean(ctx, t); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "clean:", err)
				}
			}
			r, err := leaks.Inspect(ctx, t)
			if err != nil {
				return err
			}
			if asJSON {
				b, err := r.JSON()
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			} else {
				fmt.Fprint(cmd.OutOrStdout(), r.String())
			}
			if !r.Empty() {
				return errLeaked{r.Count()}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&t.Address, "address", "", "containerd socket (default $ORCHD_CONTAINERD_SOCKET)")
	f.StringVar(&t.Namespace, "namespace", "orch", "containerd namespace")
	f.StringVar(&t.Root, "root", "", "daemon root dir (mounts under it)")
	f.StringVar(&t.State, "state", "", "daemon state dir (mounts and task bundles under it)")
	f.StringVar(&t.OrchdStateDir, "orchd-state", "", "orchd state dir (supervise / containerd-run processes naming it)")
	f.StringSliceVar(&t.IDs, "id", nil, "extra container ids to look for in /run/containerd (repeatable)")
	f.BoolVar(&t.CountImages, "images", false, "count images as leaks")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&clean, "clean", false, "force-delete the leaks first, then report what is left")
	return cmd
}
