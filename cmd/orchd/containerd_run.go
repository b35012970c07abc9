package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newContainerdRunCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "containerd-run", RunE: func(*cobra.Command, []string) error { return errors.New("containerd-run: not built yet") }}
}
