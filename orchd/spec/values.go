package spec

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a spec duration: an integer followed by "s" or "m".
func ParseDuration(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("invalid duration %q: want an integer followed by s or m (e.g. 30s, 5m)", s)
	}
	unit := s[len(s)-1]
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	if err != nil || strings.ContainsAny(s[:len(s)-1], "+-") {
		return 0, fmt.Errorf("invalid duration %q: want an integer followed by s or m (e.g. 30s, 5m)", s)
	}
	switch unit {
	case 's':
		return time.Duration(n) * time.Second, nil
	case 'm':
		return time.Duration(n) * time.Minute, nil
	}
	return 0, fmt.Errorf("invalid duration %q: want an integer followed by s or m (e.g. 30s, 5m)", s)
}
