package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/spec"
)

// cgroupRoot is where the kernel's cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// cpuPeriod is the CFS period quotas are expressed against (100ms).
const cpuPeriod = 100000

// limits are MEMORY, CPUS/CPU_QUOTA, TASKS_MAX and IO_WEIGHT in kernel units.
type limits struct {
	memory   int64 // bytes
	cpuQuota int64 // µs per cpuPeriod
	pids     int64
	ioWeight int
}

func limitsFrom(r *spec.Resources) (limits, bool, error) {
	var l limits
	if r == nil {
		return l, false, nil
	}
	n, err := r.MemoryBytes()
	if err != nil {
		return l, false, err
	}
	if n > 0 {
		l.memory = n
	}
	switch {
	case r.CPUs != nil && *r.CPUs > 0:
		l.cpuQuota = int64(*r.CPUs * cpuPeriod)
	case r.CPUQuota != "":
		pct, err := r.CPUQuotaPercent()
		if err != nil {
			return l, false, err
		}
		l.cpuQuota = int64(pct) * cpuPeriod / 100
	}
	if l.cpuQuota > 0 && l.cpuQuota < 1000 {
		l.cpuQuota = 1000 // the kernel's minimum quota
	}
	l.pids = r.TasksMax
	l.ioWeight = r.IOWeight
	return l, l != (limits{}), nil
}

// cgroupSet is the cgroup directories one service start runs in: one on
// cgroup v2, one per controller on v1.
type cgroupSet struct{ dirs []string }

// newCgroups creates the cgroup(s) for name and writes the limits. Host
// services get cgroups only when the Orchfile sets a limit, so a machine
// without writable cgroups runs everything else unchanged.
func newCgroups(name string, l limits) (*cgroupSet, error) {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		return newCgroupV2(name, l)
	}
	return newCgroupV1(name, l)
}

func newCgroupV2(name string, l limits) (*cgroupSet, error) {
	var ctrls []string
	if l.memory > 0 {
		ctrls = append(ctrls, "memory")
	}
	if l.cpuQuota > 0 {
		ctrls = append(ctrls, "cpu")
	}
	if l.pids > 0 {
		ctrls = append(ctrls, "pids")
	}
	if l.ioWeight > 0 {
		ctrls = append(ctrls, "io")
	}
	parent := filepath.Join(cgroupRoot, "orchd")
	if err := mkdirCg(parent); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	for _, dir := range []string{cgroupRoot, parent} {
		for _, c := range ctrls {
			// Best effort per controller: an unavailable one fails its write below.
			os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+c), 0)
		}
	}
	dir := filepath.Join(parent, name)
	if err := mkdirCg(dir); err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	cs := &cgroupSet{dirs: []string{dir}}
	var err error
	if l.memory > 0 {
		err = errors.Join(err, writeCg(dir, "memory.max", strconv.FormatInt(l.memory, 10)))
	}
	if l.cpuQuota > 0 {
		err = errors.Join(err, writeCg(dir, "cpu.max", fmt.Sprintf("%d %d", l.cpuQuota, cpuPeriod)))
	}
	if l.pids > 0 {
		err = errors.Join(err, writeCg(dir, "pids.max", strconv.FormatInt(l.pids, 10)))
	}
	if l.ioWeight > 0 {
		// Best effort: a weight only means something with a weight-aware I/O
		// scheduler, and a missing one must not keep the service from running.
		writeCg(dir, "io.weight", "default "+strconv.Itoa(l.ioWeight))
	}
	if err != nil {
		cs.remove()
		return nil, err
	}
	return cs, nil
}

func newCgroupV1(name string, l limits) (*cgroupSet, error) {
	cs := &cgroupSet{}
	mk := func(ctrl string) (string, error) {
		dir := filepath.Join(cgroupRoot, ctrl, "orchd", name)
		if err := mkdirCg(dir); err != nil {
			return "", fmt.Errorf("cgroup %s: %w", ctrl, err)
		}
		cs.dirs = append(cs.dirs, dir)
		return dir, nil
	}
	var err error
	if l.memory > 0 {
		dir, e := mk("memory")
		err = errors.Join(err, e)
		if e == nil {
			err = errors.Join(err, writeCg(dir, "memory.limit_in_bytes", strconv.FormatInt(l.memory, 10)))
		}
	}
	if l.cpuQuota > 0 {
		dir, e := mk("cpu")
		err = errors.Join(err, e)
		if e == nil {
			err = errors.Join(err, writeCg(dir, "cpu.cfs_period_us", strconv.Itoa(cpuPeriod)),
				writeCg(dir, "cpu.cfs_quota_us", strconv.FormatInt(l.cpuQuota, 10)))
		}
	}
	if l.pids > 0 {
		dir, e := mk("pids")
		err = errors.Join(err, e)
		if e == nil {
			err = errors.Join(err, writeCg(dir, "pids.max", strconv.FormatInt(l.pids, 10)))
		}
	}
	if l.ioWeight > 0 {
		// Best effort, as on v2: blkio weights exist only under CFQ/BFQ.
		for _, file := range []string{"blkio.weight", "blkio.bfq.weight"} {
			if _, serr := os.Stat(filepath.Join(cgroupRoot, "blkio", file)); serr == nil {
				if dir, e := mk("blkio"); e == nil {
					writeCg(dir, file, strconv.Itoa(l.ioWeight))
				}
				break
			}
		}
	}
	if err != nil {
		cs.remove()
		return nil, err
	}
	return cs, nil
}

// mkdirCg is MkdirAll that retries a few times: fell of another namespace
// may remove the shared, empty "orchd" parent between two of its steps.
func mkdirCg(dir string) error {
	var err error
	for range 3 {
		if err = os.MkdirAll(dir, 0o755); err == nil || !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return err
}

func writeCg(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("cgroup %s=%s: %w", strings.TrimPrefix(filepath.Join(dir, file), cgroupRoot+"/"), value, err)
	}
	return nil
}

// remove deletes the cgroups once their processes are gone; the kernel may
// take a moment to notice the last exit, so it retries briefly.
func (cs *cgroupSet) remove() {
	if cs == nil {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, d := range cs.dirs {
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // retry interval; the deadline bounds it
		}
	}
}

// joinCgroups moves the calling process (the init, before it starts its
// child) into each cgroup dir; the child inherits them.
func joinCgroups(dirs []string) error {
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte("0"), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", d, err)
		}
	}
	return nil
}

// CgroupName is the cgroup directory name of a unit's service (under
// <hierarchy>/orchd/): its label plus a hash of the state dir, so that the
// same label in two state dirs does not collide.
func CgroupName(label, stateDir string) string {
	return label + "-" + UnitHash([]byte(stateDir))[:8]
}
