package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func record(comm string, utime, stime, minflt uint16) []byte {
	b := make([]byte, acctRecordSize)
	b[1] = 3
	le := binary.LittleEndian
	le.PutUint16(b[32:], utime)
	le.PutUint16(b[34:], stime)
	le.PutUint16(b[42:], minflt)
	le.PutUint16(b[36:], 0x1fff) // ac_mem and ac_io: not CPU
	le.PutUint16(b[38:], 0x1fff)
	copy(b[48:], comm)
	return b
}

func TestParseAcctSumsPerProgram(t *testing.T) {
	var buf bytes.Buffer
	buf.Write(record("runc", 10, 5, 100))
	buf.Write(record("containerd-shim", 2, 1, 7))
	buf.Write(record("runc", 20, 5, 1<<13|3)) // comp_t: 3 << 3 = 24 faults
	recs, err := parseAcct(&buf)
	if err != nil {
		t.Fatal(err)
	}
	ps := byProgram(recs)
	if len(ps) != 2 || ps[0].Program != "runc" || ps[0].Processes != 2 {
		t.Fatalf("programs %+v", ps)
	}
	if ps[0].CPU != 400*time.Millisecond || ps[0].User != 300*time.Millisecond || ps[0].MinorFlt != 124 {
		t.Fatalf("runc: %+v, want 400ms CPU (300ms user) and 124 faults", ps[0])
	}
	if table := cpuTable(ps, 1); !strings.Contains(table, "(others)") || !strings.Contains(table, "TOTAL") {
		t.Fatalf("table:\n%s", table)
	}
}

func TestParseAcctRefusesAnotherVersion(t *testing.T) {
	b := record("x", 0, 0, 0)
	b[1] = 2
	if _, err := parseAcct(bytes.NewReader(b)); err == nil {
		t.Fatal("a version 2 record parsed as version 3")
	}
}

// The kernel's own records: a process that burns CPU shows up under its name.
func TestAccountingRecordsAnExitedProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("acct(2) needs root (CAP_SYS_PACCT): run as root")
	}
	a, err := startAccounting(filepath.Join(t.TempDir(), "acct"))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			a.stop()
		}
	}()
	// A shell loop (builtins only: one process) under a name of its own.
	sh := filepath.Join(t.TempDir(), "acct-burner")
	b, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sh, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, "-c", `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// What the kernel told the parent (rusage) is what accounting must say,
	// within acct's 10 ms ticks and comp_t's 13-bit mantissa.
	ps0 := cmd.ProcessState
	want := ps0.UserTime() + ps0.SystemTime()
	wantFlt := uint64(ps0.SysUsage().(*syscall.Rusage).Minflt)
	ps, err := a.stop()
	stopped = true
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Program == "acct-burner" {
			if p.Processes != 1 || p.CPU < want-30*time.Millisecond || p.CPU > want+30*time.Millisecond {
				t.Fatalf("acct-burner: %+v, want 1 process with %v of CPU (rusage)", p, want)
			}
			if p.MinorFlt+wantFlt/100+2 < wantFlt || p.MinorFlt > wantFlt+wantFlt/100+2 {
				t.Fatalf("acct-burner: %d minor faults, rusage says %d", p.MinorFlt, wantFlt)
			}
			return
		}
	}
	t.Fatalf("no record of acct-burner in %+v", ps)
}
