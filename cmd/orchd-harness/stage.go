package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newStageCmd() *cobra.Command {
	return &cobra.Command{Use: "stage", RunE: func(*cobra.Command, []string) error { return errors.New("stage: not built yet") }}
}
