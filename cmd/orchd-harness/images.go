package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newImagesCmd() *cobra.Command {
	return &cobra.Command{Use: "images", RunE: func(*cobra.Command, []string) error { return errors.New("images: not built yet") }}
}

func newRegistryCmd() *cobra.Command {
	return &cobra.Command{Use: "registry", RunE: func(*cobra.Command, []string) error { return errors.New("registry: not built yet") }}
}
