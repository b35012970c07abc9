package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/orchd/orchd/orchd/platform/orchdi"
)

// localTools copies the binaries every container operation executes
// (containerd, the shim, runc or crun, orchd and orchd-supervise)
// from the 9p tools share into dst on the guest's tmpfs. On the share
// (cache=mmap) a binary's pages are dropped once no process holds it, so each
// exec reads them over 9p again, at TCG speed. It returns dst's bin dir and
// orchd's path.
func localTools(src, dst string) (bin, orchd string, err error) {
	bin = filepath.Join(dst, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", "", err
	}
	entries, err := os.ReadDir(filepath.Join(src, "bin"))
	if err != nil {
		return "", "", err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if err := copyExec(filepath.Join(src, "bin", e.Name()), filepath.Join(bin, e.Name())); err != nil {
			return "", "", err
		}
	}
	// orchd starts orchd-supervise from beside itself when it is there.
	for _, name := range []string{"orchd", orchdi.SuperviseBinary} {
		if err := copyExec(filepath.Join(src, name), filepath.Join(dst, name)); err != nil {
			return "", "", err
		}
	}
	return bin, filepath.Join(dst, "orchd"), nil
}

func copyExec(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("local tools: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return fmt.Errorf("local tools: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("local tools: copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("local tools: %w", err)
	}
	return nil
}

// execTime is the median wall time of n runs of argv (start to exit): what
// one exec of that binary costs in this guest.
func execTime(ctx context.Context, n int, argv ...string) (time.Duration, error) {
	var ds []time.Duration
	for range n {
		start := time.Now()
		if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput(); err != nil {
			return 0, fmt.Errorf("%v: %w: %s", argv, err, out)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}
