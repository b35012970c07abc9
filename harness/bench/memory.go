package bench

import (
	"strings"

	"github.com/orchd/orchd/orchd/procfs"
)

// memSample sums the memory of one grove's orchd processes.
type memSample struct {
	// pssKB sums PSS (the orchd binaries' shared pages divided among the
	// processes mapping them); peakKB sums VmHWM, which counts them in full.
	pssKB, peakKB int64
	procs         int
}

// sampleProcs finds every process whose command line names stateDir: the
// supervisors and inits (<state>/run/<label>.unit.json), the leaves and the
// containerd agent (--state-dir <state>).
func sampleProcs(stateDir string) *memSample {
	m := &memSample{}
	procs, _ := procfs.Processes()
	for _, p := range procs {
		if !strings.Contains(p.Cmdline(), stateDir) {
			continue
		}
		mem := procfs.Memory(p.Pid)
		m.pssKB += mem.PSS
		m.peakKB += mem.HWM
		m.procs++
	}
	return m
}

func rssKB(pid int) int64 { return procfs.Memory(pid).RSS }
