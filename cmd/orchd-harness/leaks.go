package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newLeaksCmd() *cobra.Command {
	return &cobra.Command{Use: "leaks", RunE: func(*cobra.Command, []string) error { return errors.New("leaks: not built yet") }}
}
