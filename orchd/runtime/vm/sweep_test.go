package vm

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/orchd/orchd/orchd/contract"
)

// A leaf killed with its supervisor may still be writing into its scratch
// dir when fell sweeps: Sweep must wait for it, then leave nothing behind.
func TestSweepWaitsForAWriterNamingTheScratchDir(t *testing.T) {
	env := contract.Env{StateDir: t.TempDir(), Namespace: "ns"}
	work := contract.Layout{StateDir: env.StateDir}.VMWorkDir(contract.Label("ns", "svc"))
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	// The writer names the dir in its argv, as qemu names its initramfs,
	// and keeps (re)creating files there for a while, like a dying leaf.
	w := exec.Command("sh", "-c", `for i in $(seq 40); do mkdir -p "$1" && : > "$1/spill-$i"; sleep 0.02; done`, "writer", work)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Wait() }()
	if err := (&Runtime{}).Sweep(context.Background(), env, []string{"svc"}); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	select {
	case <-done:
	default:
		t.Fatal("Sweep returned while the writer was still running")
	}
	if _, err := os.Stat(work); !os.IsNotExist(err) {
		t.Fatalf("scratch dir after Sweep: %v (want gone)", err)
	}
}
