package vm

import (
	"fmt"
	"math"

	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/runtime/vm/guest"
	"github.com/orchd/orchd/orchd/spec"
)

// cfsPeriod is the CFS period (µs) cpu.max quotas are expressed against.
const cfsPeriod = 100000

// minCFSQuota is the smallest quota (µs) the kernel accepts in cpu.max.
const minCFSQuota = 1000

// GuestLimits maps the resource directives to what the guest init applies to
// the service command: cpu.max from CPU_QUOTA (the more explicit, as in the
// containerd runtime) or CPUS, pids.max from TASKS_MAX, memory.max from
// MEMORY, io.weight from IO_WEIGHT, and LIMIT_NOFILE / LIMIT_NPROC as
// rlimits. A value that cannot be applied is an error naming its directive.
func GuestLimits(r spec.Resources) (guest.Limits, error) {
	var l guest.Limits
	n, err := r.MemoryBytes()
	if err != nil {
		return l, err
	}
	if n > 0 {
		l.MemoryMax = n
	}
	var quota int64
	var directive string
	switch {
	case r.CPUQuota != "":
		pct, err := r.CPUQuotaPercent()
		if err != nil {
			return l, err
		}
		quota, directive = int64(pct)*cfsPeriod/100, "CPU_QUOTA "+r.CPUQuota
	case r.CPUs != nil:
		if *r.CPUs <= 0 {
			return l, fmt.Errorf("CPUS %g: must be greater than 0", *r.CPUs)
		}
		quota, directive = int64(math.Round(*r.CPUs*cfsPeriod)), fmt.Sprintf("CPUS %g", *r.CPUs)
	}
	if directive != "" {
		if quota < minCFSQuota {
			return l, fmt.Errorf("%s: a quota of %dµs per %dµs is below the kernel's minimum of %dµs (CPUS 0.01 / CPU_QUOTA 1%%)", directive, quota, cfsPeriod, minCFSQuota)
		}
		l.CPUMax = fmt.Sprintf("%d %d", quota, cfsPeriod)
	}
	l.PidsMax = r.TasksMax
	l.IOWeight = r.IOWeight
	if r.LimitNofile > 0 {
		l.Rlimits = append(l.Rlimits, guest.Rlimit{Directive: "LIMIT_NOFILE", Resource: unix.RLIMIT_NOFILE, Value: uint64(r.LimitNofile)})
	}
	if r.LimitNproc > 0 {
		l.Rlimits = append(l.Rlimits, guest.Rlimit{Directive: "LIMIT_NPROC", Resource: unix.RLIMIT_NPROC, Value: uint64(r.LimitNproc)})
	}
	return l, nil
}
