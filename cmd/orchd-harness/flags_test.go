package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// run executes orchd-harness with args in process.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestSuitesRefusesBadFiltersBeforeBuilding(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"suites", "--label-filter", "((slow"}, `--label-filter "((slow"`},
		{[]string{"suites", "--focus", "exec("}, `--focus/--skip "exec("`},
		{[]string{"suites", "--address", "/run/x.sock", "--matrix"}, "--address runs against that daemon"},
		{[]string{"suites", "fanout"}, "Ginkgo flags go after --"},
	} {
		start := time.Now()
		out, err := run(t, append(tc.args, "--report-dir", t.TempDir())...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error with %q, got %v (%s)", tc.args, tc.want, err, out)
		}
		// Nothing was staged or built: the refusal is immediate.
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%v: took %s; the check must come before staging", tc.args, d)
		}
	}
}

func TestOneToolchainFlag(t *testing.T) {
	for _, verb := range []string{"suites", "stress", "bench", "stage", "daemon", "inception"} {
		cmd, _, err := newRootCmd().Find([]string{verb})
		if err != nil {
			t.Fatal(err)
		}
		f := cmd.Flags().Lookup("containerd")
		if f == nil {
			t.Errorf("%s has no --containerd", verb)
			continue
		}
		if tf := cmd.Flags().Lookup("toolchain"); tf != nil && tf.Deprecated == "" {
			t.Errorf("%s: --toolchain is a second name for the toolchain", verb)
		}
		if j := cmd.Flags().Lookup("json"); j != nil && j.Value.Type() != "bool" {
			t.Errorf("%s: --json is a %s, want a switch", verb, j.Value.Type())
		}
	}
}
