package spec

import (
	"fmt"
	"time"
)

// Resolved values: each default of the language reference is applied here and
// only here, so every consumer (supervisor, leaves, platforms) agrees on it.

// Or converts d to a time.Duration; an empty or invalid value yields def
// (one of the Default* constants, always valid).
func (d Duration) Or(def Duration) time.Duration { return d.Std(def.Std(0)) }

// StopTimeout is TIMEOUT_STOP, the grace between SIGTERM and SIGKILL.
func (t Timeouts) StopTimeout() time.Duration { return t.Stop.Or(DefaultTimeoutStop) }

// StartTimeout is TIMEOUT_START.
func (t Timeouts) StartTimeout() time.Duration { return t.Start.Or(DefaultTimeoutStart) }

// DelayDuration is RESTART_DELAY.
func (r Restart) DelayDuration() time.Duration { return r.Delay.Or(DefaultRestartDelay) }

// Interval is START_LIMIT_INTERVAL.
func (r Restart) Interval() time.Duration { return r.StartLimitInterval.Or(DefaultStartLimitInterval) }

// Burst is START_LIMIT_BURST.
func (r Restart) Burst() int {
	if r.StartLimitBurst <= 0 {
		return DefaultStartLimitBurst
	}
	return r.StartLimitBurst
}

// Readiness is a READINESS_TIMEOUT value, its default when unset.
func Readiness(d Duration) time.Duration { return d.Or(DefaultReadinessTimeout) }

// MemoryBytes is MEMORY in bytes; 0 when unset.
func (r Resources) MemoryBytes() (int64, error) {
	if r.Memory == "" {
		return 0, nil
	}
	n, err := ParseSize(r.Memory)
	if err != nil {
		return 0, fmt.Errorf("MEMORY: %w", err)
	}
	return n, nil
}

// CPUQuotaPercent is CPU_QUOTA in percent of one CPU; 0 when unset.
func (r Resources) CPUQuotaPercent() (int, error) {
	if r.CPUQuota == "" {
		return 0, nil
	}
	n, err := ParseCPUQuota(r.CPUQuota)
	if err != nil {
		return 0, fmt.Errorf("CPU_QUOTA: %w", err)
	}
	return n, nil
}
