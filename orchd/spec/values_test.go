package spec

import (
	"testing"
	"time"
)

func TestParseDurationGoUnits(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "5m": 5 * time.Minute, "500ms": 500 * time.Millisecond,
		"2h": 2 * time.Hour, "1m30s": 90 * time.Second, "1.5s": 1500 * time.Millisecond, "0s": 0,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "30", "-5s", "+5s", "1d", "s", "ms"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q): want an error", in)
		}
	}
}
