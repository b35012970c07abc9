package main

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The guest is CPU-bound under TCG, so where its CPU goes decides how long a
// run takes. BSD process accounting (acct(2)) records every process that
// exits, in every PID namespace below the guest's (containers included), with
// its CPU time and page faults: summed per program it says what the suites'
// containers cost (orchd's supervisors and leaves, containerd, the shims, the
// OCI runtime, the probe) without sampling or a profiler in the guest.

// acctRecordSize is sizeof(struct acct_v3) (linux/acct.h).
const acctRecordSize = 64

// acctHZ is AHZ, the unit of acct_v3's times (USER_HZ).
const acctHZ = 100

// ProgramCPU is what the processes of one program (by command name) cost.
type ProgramCPU struct {
	Program   string        `json:"program"`
	Processes int           `json:"processes"`
	CPU       time.Duration `json:"cpu_ns"`
	User      time.Duration `json:"user_ns"`
	System    time.Duration `json:"system_ns"`
	MinorFlt  uint64        `json:"minor_faults"`
}

// acctRecord is the part of one acct_v3 record the summary uses.
type acctRecord struct {
	comm         string
	user, system time.Duration
	minflt       uint64
}

// decodeComp decodes acct's comp_t: a 13-bit mantissa and a 3-bit base-8
// exponent.
func decodeComp(c uint16) uint64 { return uint64(c&0x1fff) << (3 * uint64(c>>13)) }

func ticks(c uint16) time.Duration {
	return time.Duration(decodeComp(c)) * time.Second / acctHZ
}

// parseAcct reads acct_v3 records.
func parseAcct(r io.Reader) ([]acctRecord, error) {
	var recs []acctRecord
	buf := make([]byte, acctRecordSize)
	for {
		if _, err := io.ReadFull(r, buf); err == io.EOF {
			return recs, nil
		} else if err != nil {
			return recs, fmt.Errorf("process accounting: %w", err)
		}
		if buf[1] != 3 { // ac_version
			return recs, fmt.Errorf("process accounting: record version %d, want 3", buf[1])
		}
		le := binary.LittleEndian
		recs = append(recs, acctRecord{
			comm: strings.TrimRight(string(buf[48:64]), "\x00"),
			// ac_utime, ac_stime, then ac_mem, ac_io, ac_rw, ac_minflt.
			user:   ticks(le.Uint16(buf[32:])),
			system: ticks(le.Uint16(buf[34:])),
			minflt: decodeComp(le.Uint16(buf[42:])),
		})
	}
}

// byProgram sums records per command name, most CPU first.
func byProgram(recs []acctRecord) []ProgramCPU {
	m := map[string]*ProgramCPU{}
	for _, r := range recs {
		p := m[r.comm]
		if p == nil {
			p = &ProgramCPU{Program: r.comm}
			m[r.comm] = p
		}
		p.Processes++
		p.User += r.user
		p.System += r.system
		p.CPU += r.user + r.system
		p.MinorFlt += r.minflt
	}
	out := make([]ProgramCPU, 0, len(m))
	for _, p := range m {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b ProgramCPU) int {
		return cmp.Or(cmp.Compare(b.CPU, a.CPU), cmp.Compare(a.Program, b.Program))
	})
	return out
}

// accounting is process accounting switched on into one file.
type accounting struct{ path string }

// startAccounting switches process accounting on into path (a tmpfs file:
// one record per exit). It fails where the kernel has no BSD accounting.
func startAccounting(path string) (*accounting, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("process accounting: %w", err)
	}
	f.Close()
	if err := unix.Acct(path); err != nil {
		return nil, fmt.Errorf("process accounting on %s: %w", path, err)
	}
	return &accounting{path: path}, nil
}

// stop switches accounting off and sums the records per program.
func (a *accounting) stop() ([]ProgramCPU, error) {
	// acct(NULL) switches it off (unix.Acct("") would name a file "").
	if _, _, e := unix.Syscall(unix.SYS_ACCT, 0, 0, 0); e != 0 {
		return nil, fmt.Errorf("process accounting off: %w", e)
	}
	f, err := os.Open(a.path)
	if err != nil {
		return nil, fmt.Errorf("process accounting: %w", err)
	}
	defer f.Close()
	recs, err := parseAcct(f)
	return byProgram(recs), err
}

// cpuTable renders the top n programs and the rest as one line each.
func cpuTable(ps []ProgramCPU, n int) string {
	var total time.Duration
	for _, p := range ps {
		total += p.CPU
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-16s %9s %10s %6s %8s %12s\n", "PROGRAM", "PROCESSES", "CPU", "SHARE", "PER PROC", "MINOR FAULTS")
	row := func(p ProgramCPU) {
		share := 0.0
		if total > 0 {
			share = 100 * float64(p.CPU) / float64(total)
		}
		per := time.Duration(0)
		if p.Processes > 0 {
			per = p.CPU / time.Duration(p.Processes)
		}
		fmt.Fprintf(&b, "%-16s %9d %10s %5.1f%% %8s %12d\n", p.Program, p.Processes,
			p.CPU.Round(10*time.Millisecond), share, per.Round(time.Millisecond), p.MinorFlt)
	}
	rest := ProgramCPU{Program: "(others)"}
	for i, p := range ps {
		if i < n {
			row(p)
			continue
		}
		rest.Processes += p.Processes
		rest.CPU += p.CPU
		rest.MinorFlt += p.MinorFlt
	}
	if rest.Processes > 0 {
		row(rest)
	}
	fmt.Fprintf(&b, "%-16s %9s %10s", "TOTAL", "", total.Round(10*time.Millisecond))
	return b.String()
}
