package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDaemonCmd() *cobra.Command {
	return &cobra.Command{Use: "daemon", RunE: func(*cobra.Command, []string) error { return errors.New("daemon: not built yet") }}
}
