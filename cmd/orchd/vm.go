package main

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/orchd/orchd/orchd/runtime/vm"
	"github.com/orchd/orchd/orchd/runtime/vm/guest"
)

func newVMRunCmd(a *app) *cobra.Command {
	var specFile string
	cmd := &cobra.Command{
		Use:   "vm-run --spec-file FILE",
		Short: "Boot one service's microVM in the foreground and exit with its exit code",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if specFile == "" {
				return errors.New("vm-run: --spec-file is required")
			}
			leaf := &vm.Leaf{Stdout: os.Stdout, Stderr: os.Stderr}
			code, err := leaf.Run(cmd.Context(), specFile)
			if err != nil || code != 0 {
				return &exitError{code: code, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&specFile, "spec-file", "", "the vm-run spec (written 0600 by tend)")
	return cmd
}

func newVMInitCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "vm-init",
		Short:  "The init (PID 1) inside a vm service's microVM",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(*cobra.Command, []string) error {
			return guest.Main()
		},
	}
	return cmd
}
