// Package supervise is orchd's per-service supervisor (`orchd supervise --spec
// UNIT`) and the tiny init it runs every command under. It keeps its imports
// small on purpose: one supervisor runs per service, so its memory matters.
package supervise

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/orchd/orchd/orchd/contract"

	"github.com/orchd/orchd/orchd/procfs"
)

// UnitHash is the hash a supervisor reports for the unit bytes it runs; tend
// compares it with the unit it is about to install to decide "changed".
func UnitHash(unit []byte) string {
	sum := sha256.Sum256(unit)
	return hex.EncodeToString(sum[:])
}

// ReadStatus reads a supervisor's status file.
func ReadStatus(path string) (contract.Status, error) {
	var st contract.Status
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read status %s: %w", path, err)
	}
	return st, nil
}

// ReadSettled reads label's status and reports whether its supervisor is
// alive, in the one order that cannot mistake a supervisor's last word for
// its death: a supervisor writes its final state and only then exits, so a
// reader that finds a non-final (or no) status and then no live supervisor
// reads the status again. Whatever that second read shows is what the
// supervisor left; if it is still not final, the supervisor died mid-run.
func ReadSettled(l contract.Layout, label string) (st contract.Status, alive bool, err error) {
	path := l.StatusFile(label)
	st, err = ReadStatus(path)
	alive = supervisorAlive(l, label, st.SupervisorPid)
	if !alive && (err != nil || !Final(st.State)) {
		if again, aerr := ReadStatus(path); aerr == nil {
			st, err = again, nil
		}
	}
	return st, alive, err
}

// supervisorAlive: the supervisor of label by its pidfile, or by the pid its
// status names (a pidfile lost to a crashed tend).
func supervisorAlive(l contract.Layout, label string, statusPid int) bool {
	unit := l.UnitFile(label)
	return Alive(ReadPid(l.PidFile(label)), unit) || Alive(statusPid, unit)
}

// Final reports whether a state is one a supervisor leaves only by exiting.
func Final(state string) bool {
	switch state {
	case contract.StateExited, contract.StateFailed, contract.StateStopped:
		return true
	}
	return false
}

// ReadPid reads a pidfile; 0 when absent or malformed.
func ReadPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Alive reports whether pid is a live (not zombie) `orchd supervise` process
// running unitPath. Checking the command line guards against pid reuse.
func Alive(pid int, unitPath string) bool {
	if pid <= 0 || !running(pid) {
		return false
	}
	args := Cmdline(pid)
	return isSupervisor(args) && contains(args, unitPath)
}

// Cmdline returns a process's argv; nil if it is gone.
func Cmdline(pid int) []string { return procfs.Argv(pid) }

// running reports whether pid exists and is not a zombie.
func running(pid int) bool { return procfs.Alive(pid) }

// Running reports whether pid exists and is not a zombie.
func Running(pid int) bool { return running(pid) }

func isSupervisor(args []string) bool {
	return len(args) >= 2 && args[1] == "supervise" && !contains(args, initFlag)
}

func contains(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}
