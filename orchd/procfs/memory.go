package procfs

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// Mem is a process's memory in KiB: resident now (VmRSS), its peak (VmHWM),
// and its proportional share (Pss: shared pages divided among the processes
// mapping them).
type Mem struct {
	RSS, HWM, PSS int64
}

// Memory reads /proc/<pid>/status and smaps_rollup; a vanished process reads as zero.
func Memory(pid int) Mem {
	var m Mem
	if pid <= 0 {
		return m
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		m.RSS, m.HWM = field(b, "VmRSS:"), field(b, "VmHWM:")
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		m.PSS = field(b, "Pss:")
	}
	return m
}

// field returns the number after key at the start of a line ("VmRSS:   123 kB").
func field(b []byte, key string) int64 {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			f := bytes.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return v
			}
		}
	}
	return 0
}
