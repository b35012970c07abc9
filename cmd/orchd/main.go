// Command orchd runs the services an Orchfile describes: it parses the Orchfile,
// cuts each service for a runtime, plants the result for a platform, and tends it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/config"
	"github.com/orchd/orchd/orchd/orchard"
	"github.com/orchd/orchd/orchd/version"
)

// exitError carries a specific exit status (e.g. a container's exit code).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "orchd:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "orchd:", err)
	os.Exit(1)
}

// app holds what every command shares: the bound global flags.
type app struct {
	flags  *config.Flags
	stderr io.Writer // warnings
}

// config resolves the configuration (flag > env > .orchrc > default).
func (a *app) config() (*config.Config, error) { return a.flags.Load(nil) }

// containerdModule is the containerd client orchd links; --version names its version.
const containerdModule = "github.com/containerd/containerd/v2"

// progress is where a walk reports what it does: stderr, nothing with -q.
func (a *app) progress(cmd *cobra.Command, cfg *config.Config) io.Writer {
	if cfg.Quiet {
		return io.Discard
	}
	return cmd.ErrOrStderr()
}

// completeServices offers the Orchfile's services, and those with state in
// the namespace, for shell completion.
func (a *app) completeServices(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	cfg, err := a.config()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, n := range orchard.ServiceNames(cmd.Context(), cfg) {
		if !slices.Contains(args, n) {
			out = append(out, n)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// logLevel is the level -v and -q ask for.
func logLevel(cmd *cobra.Command) slog.Level {
	if v, _ := cmd.Flags().GetBool("verbose"); v {
		return slog.LevelDebug
	}
	if q, _ := cmd.Flags().GetBool("quiet"); q {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

func newRootCmd() *cobra.Command {
	a := &app{stderr: os.Stderr}
	root := &cobra.Command{
		Use:           "orchd",
		Short:         "Run the services an Orchfile describes, supervised, and leave nothing behind",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       "-", // --version prints versionText (cobra needs a non-empty Version)
	}
	root.SetVersionTemplate(version.Read(containerdModule).String("orchd", containerdModule))
	a.flags = config.Bind(root.PersistentFlags())
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel(cmd)})))
		return nil
	}
	root.AddGroup(&cobra.Group{ID: "walks", Title: "Walks:"}, &cobra.Group{ID: "rows", Title: "Rows (JSON pipes):"})
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("walks", newGrowCmd(a), newSurveyCmd(a), newFellCmd(a), newLogsCmd(a), newRestartCmd(a), newKillCmd(a), newExecCmd(a), newReloadCmd(a))
	add("rows", newParseCmd(a), newValidateCmd(a), newSowCmd(a), newPlantCmd(a), newTendCmd(a))
	// Leaves are what supervisors run; users never call them, so help omits them.
	for _, c := range []*cobra.Command{newSuperviseCmd(a), newContainerdRunCmd(a), newContainerdAgentCmd(a), newVMRunCmd(a), newVMInitCmd(a), newHealthWaitCmd(a), newEnvExecCmd(a), newNotifyRelayCmd(a)} {
		c.Hidden = true
		root.AddCommand(c)
	}
	return root
}
