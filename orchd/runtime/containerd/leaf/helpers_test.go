package leaf

import (
	"testing"
	"time"
)

func TestStopGrace(t *testing.T) {
	for in, want := range map[string]string{"10s": "7s", "3s": "2s", "1m0s": "57s"} {
		d, _ := time.ParseDuration(in)
		if got := stopGrace(d).String(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
