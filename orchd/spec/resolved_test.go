package spec

import (
	"testing"
	"time"
)

func TestResolvedDefaults(t *testing.T) {
	var zero Service
	if got := zero.Timeouts.StopTimeout(); got != 10*time.Second {
		t.Errorf("unset TIMEOUT_STOP = %s, want 10s", got)
	}
	if got := zero.Timeouts.StartTimeout(); got != 90*time.Second {
		t.Errorf("unset TIMEOUT_START = %s, want 90s", got)
	}
	if got := (Timeouts{Stop: "3s"}).StopTimeout(); got != 3*time.Second {
		t.Errorf("TIMEOUT_STOP 3s = %s", got)
	}
	if r := zero.Restart; r.DelayDuration() != time.Second || r.Interval() != 10*time.Second || r.Burst() != 5 {
		t.Errorf("restart defaults: %s %s %d", r.DelayDuration(), r.Interval(), r.Burst())
	}
	if got := Readiness(""); got != 90*time.Second {
		t.Errorf("unset READINESS_TIMEOUT = %s", got)
	}
	if n, err := (Resources{Memory: "2M"}).MemoryBytes(); err != nil || n != 2<<20 {
		t.Errorf("MEMORY 2M = %d, %v", n, err)
	}
	if n, err := (Resources{}).MemoryBytes(); err != nil || n != 0 {
		t.Errorf("unset MEMORY = %d, %v", n, err)
	}
}

func TestCPUQuotaPercent(t *testing.T) {
	if n, err := (Resources{CPUQuota: "150%"}).CPUQuotaPercent(); err != nil || n != 150 {
		t.Errorf("CPU_QUOTA 150%% = %d, %v", n, err)
	}
	if n, err := (Resources{}).CPUQuotaPercent(); err != nil || n != 0 {
		t.Errorf("unset CPU_QUOTA = %d, %v", n, err)
	}
	if _, err := (Resources{CPUQuota: "x"}).CPUQuotaPercent(); err == nil {
		t.Error("a bad CPU_QUOTA was accepted")
	}
}
