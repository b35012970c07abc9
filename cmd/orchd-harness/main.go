// Command orchd-harness stages a containerd toolchain, runs private containerd
// daemons, builds fixture images, inspects for leaks, and runs the conformance
// suites, stress cycles, benchmarks and the inception VM.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "orchd-harness:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var verbose bool
	root := &cobra.Command{
		Use:           "orchd-harness",
		Short:         "Conformance harness for orchd and nested containerd runtimes",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       "-", // cobra needs one; the template prints the build
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.SetVersionTemplate(version.Read("github.com/containerd/containerd/v2").String("orchd-harness", "github.com/containerd/containerd/v2"))
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	// One file per command group; each newXCmd lives next to the code it drives.
	root.AddCommand(
		newStageCmd(),     // stage.go: toolchain staging
		newDaemonCmd(),    // daemon.go: a private containerd in the foreground
		newImagesCmd(),    // images.go: fixture OCI layouts
		newRegistryCmd(),  // images.go: serve fixture images on loopback
		newLeaksCmd(),     // leaks.go: the leak inspector
		newSuitesCmd(),    // suites.go: the conformance suites (the main job)
		newStressCmd(),    // stress.go: grow/fell stress cycles
		newBenchCmd(),     // bench.go: orchd against ctr, side by side
		newInceptionCmd(), // inception.go: the suites inside a microVM
		newMatrixCmd(),    // matrix.go: the conformance matrix from report files
	)
	return root
}
