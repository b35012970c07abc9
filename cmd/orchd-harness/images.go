package main

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/registry"
)

func newImagesCmd() *cobra.Command {
	var (
		out, probe, moduleRoot, arch string
		only                         []string
		asJSON                       bool
	)
	cmd := &cobra.Command{
		Use:   "images --out DIR",
		Short: "Build the fixture images as OCI layouts (one directory per image)",
		Long: `Build the fixture images (` + fmt.Sprint(images.Names()) + `) as OCI image
layouts under DIR. The probe is compiled from this source tree (static, cached
by source hash) unless --probe names a prebuilt one.

Import one into containerd from a tar of the layout; the index names it, e.g.
  ctr -n NS images import probe.tar   ->  ` + images.Ref(images.Probe),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := []images.Option{images.WithLogger(slog.Default())}
			if probe != "" {
				opts = append(opts, images.WithProbeBinary(probe))
			}
			if moduleRoot != "" {
				opts = append(opts, images.WithModuleRoot(moduleRoot))
			}
			if arch != "" {
				opts = append(opts, images.WithArch(arch))
			}
			if len(only) > 0 {
				opts = append(opts, images.WithNames(only...))
			}
			slog.Info("building fixture images", "out", out)
			set, err := images.Build(cmd.Context(), out, opts...)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(set)
			}
			return set.WriteTable(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "output directory (required)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the image set as JSON")
	cmd.Flags().StringVar(&probe, "probe", "", "prebuilt static probe binary (default: compile fixtures/probe)")
	cmd.Flags().StringVar(&moduleRoot, "source", "", "orchd source tree to compile the probe from (default: go env GOMOD)")
	cmd.Flags().StringVar(&arch, "arch", "", "image architecture (default: this machine's)")
	cmd.Flags().StringSliceVar(&only, "only", nil, "build only these images")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func newRegistryCmd() *cobra.Command {
	var dir, addr string
	cmd := &cobra.Command{
		Use:   "registry --images DIR",
		Short: "Serve the fixture layouts in DIR from an in-memory registry on loopback (foreground)",
		Long: `Serve the fixture images built by "orchd-harness images --out DIR" over plain
HTTP until interrupted. Pull them as ADDR/NAME:latest, e.g.
  ctr -n NS images pull --plain-http 127.0.0.1:5000/probe:latest`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			set, err := images.Load(dir)
			if err != nil {
				return err
			}
			reg, err := registry.Serve(ctx, addr, set.Layouts...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "registry: serving on http://%s\n", reg.Addr())
			for _, l := range set.Layouts {
				fmt.Fprintf(out, "  %s\t%s\n", reg.Ref(l.Name), l.ManifestDigest)
			}
			<-ctx.Done()
			return reg.Close()
		},
	}
	cmd.Flags().StringVar(&dir, "images", "", "directory of fixture layouts (required)")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:5000", "listen address (port 0 picks a free one)")
	_ = cmd.MarkFlagRequired("images")
	return cmd
}
