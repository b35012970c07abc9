package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/orchd/orchd/harness/toolchain"
	"github.com/orchd/orchd/orchd/platform/orchdi"
)

// localTools copies the binaries every container operation executes (the
// shim, runc or crun, orchd and orchd-supervise)
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
		from, to := filepath.Join(src, "bin", e.Name()), filepath.Join(bin, e.Name())
		if slices.Contains(onceBinaries, e.Name()) {
			// Run once (or never) a run: a link to the share saves the copy.
			if err := os.Symlink(from, to); err != nil {
				return "", "", fmt.Errorf("local tools: %w", err)
			}
			continue
		}
		if err := copyExec(from, to); err != nil {
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

// onceBinaries are the toolchain's binaries a run starts once (the daemon)
// or never (ctr): the others run for every container operation.
var onceBinaries = []string{toolchain.BinContainerd, toolchain.BinCtr}

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

// cpuTimes are the guest's CPU counters from /proc/stat (all CPUs, in ticks).
type cpuTimes struct{ busy, total uint64 }

func readCPU() cpuTimes {
	var c cpuTimes
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	// guest and guest_nice (after steal) are already in user and nice.
	for i := 1; i < min(len(f), 9); i++ {
		v, _ := strconv.ParseUint(f[i], 10, 64)
		c.total += v
		// user nice system idle iowait irq softirq steal: idle and iowait are not busy
		if i != 4 && i != 5 {
			c.busy += v
		}
	}
	return c
}

// busySince is the share of CPU time spent busy since before, e.g. "73%".
func (c cpuTimes) busySince(before cpuTimes) string {
	if c.total <= before.total {
		return "?"
	}
	return fmt.Sprintf("%d%%", 100*(c.busy-before.busy)/(c.total-before.total))
}
