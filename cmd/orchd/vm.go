package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newVMRunCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "vm-run", RunE: func(*cobra.Command, []string) error { return errors.New("vm-run: not built yet") }}
}

func newVMInitCmd(a *app) *cobra.Command {
	return &cobra.Command{Use: "vm-init", RunE: func(*cobra.Command, []string) error { return errors.New("vm-init: not built yet") }}
}
