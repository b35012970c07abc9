package spec

import (
	"fmt"
	"math"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a spec duration: the spec's integer followed by "s" or
// "m", or any non-negative Go duration ("500ms", "1m30s", "2h").
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("invalid duration %q: want a number with a unit, e.g. 500ms, 30s, 5m, 2h", s)
	}
	return d, nil
}

var (
	volumeNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	hostLabelRe  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// ValidServiceName reports whether s is a valid SERVICE name: a lowercase letter,
// then lowercase letters, digits or '-', at most 63 characters
// (^[a-z][a-z0-9-]{0,62}$).
func ValidServiceName(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validArgName: a letter, then letters, digits or '_'.
func validArgName(s string) bool {
	return len(s) > 0 && isLetter(s[0]) && allWord(s[1:])
}

// validEnvKey: a letter or '_', then letters, digits or '_'.
func validEnvKey(s string) bool {
	return len(s) > 0 && (isLetter(s[0]) || s[0] == '_') && allWord(s[1:])
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func allWord(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isLetter(c) || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ParseSize parses a size: an integer followed by K, M or G (1024-based), or a
// plain integer meaning bytes.
func ParseSize(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("invalid size %q: want an integer followed by K, M or G (e.g. 512M)", s)
	}
	mult := int64(1)
	num := s
	switch s[len(s)-1] {
	case 'K':
		mult, num = 1<<10, s[:len(s)-1]
	case 'M':
		mult, num = 1<<20, s[:len(s)-1]
	case 'G':
		mult, num = 1<<30, s[:len(s)-1]
	}
	if num == "" || !allDigits(num) {
		return 0, fmt.Errorf("invalid size %q: want an integer followed by K, M or G (e.g. 512M)", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n * mult, nil
}

// ParseCPUQuota parses CPU_QUOTA: a positive integer followed by "%" ("150%" -> 150).
func ParseCPUQuota(s string) (int, error) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok || num == "" || !allDigits(num) {
		return 0, fmt.Errorf("invalid CPU quota %q: want a positive integer followed by %% (e.g. 150%%)", s)
	}
	n, err := strconv.ParseInt(num, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("invalid CPU quota %q: too large", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("invalid CPU quota %q: must be greater than 0%%", s)
	}
	return int(n), nil
}

// parsePositiveInt parses a strictly positive decimal integer (no sign, no spaces).
func parsePositiveInt(s string, bits int) (int64, error) {
	if s == "" || !allDigits(s) {
		return 0, fmt.Errorf("invalid value %q: want a positive integer", s)
	}
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("invalid value %q: too large", s)
	}
	if n <= 0 {
		return 0, fmt.Errorf("invalid value %q: must be greater than 0", s)
	}
	return n, nil
}

// parsePort parses a TCP/UDP port number, 1..65535.
func parsePort(s string) (int, error) {
	if s == "" || !allDigits(s) {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %s is out of range 1-65535", s)
	}
	return n, nil
}

// ParsePublish parses PUBLISH [addr:]host:container. addr is an IPv4 address, an
// IPv6 address in brackets, or a hostname.
func ParsePublish(s string) (Publish, error) {
	var addr, rest string
	bracketed := false
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Publish{}, fmt.Errorf("missing ] after IPv6 address")
		}
		addr, rest = s[1:end], s[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return Publish{}, fmt.Errorf("want [addr]:host:container")
		}
		rest = rest[1:]
		bracketed = true
	} else {
		rest = s
	}
	parts := strings.Split(rest, ":")
	switch {
	case bracketed && len(parts) == 2:
	case !bracketed && len(parts) == 2:
	case !bracketed && len(parts) == 3:
		addr, parts = parts[0], parts[1:]
		if addr == "" {
			return Publish{}, fmt.Errorf("empty address before host port")
		}
	case !bracketed && len(parts) > 3:
		return Publish{}, fmt.Errorf("too many ':' (an IPv6 address must be in brackets, e.g. [::1]:8080:80)")
	default:
		return Publish{}, fmt.Errorf("want [addr:]host:container")
	}
	host, err := parsePort(parts[0])
	if err != nil {
		return Publish{}, fmt.Errorf("host %w", err)
	}
	ctr, err := parsePort(parts[1])
	if err != nil {
		return Publish{}, fmt.Errorf("container %w", err)
	}
	p := Publish{Host: host, Container: ctr}
	if bracketed {
		ip, err := netip.ParseAddr(addr)
		if err != nil || !ip.Is6() {
			return Publish{}, fmt.Errorf("%q is not an IPv6 address", addr)
		}
		p.HostIP = addr
	} else if addr != "" {
		if err := validHostAddr(addr); err != nil {
			return Publish{}, err
		}
		p.HostIP = addr
	}
	return p, nil
}

// validHostAddr accepts an IPv4 address or an RFC 1123 hostname.
func validHostAddr(a string) error {
	if ip, err := netip.ParseAddr(a); err == nil {
		if ip.Is4() {
			return nil
		}
		return fmt.Errorf("address %q: an IPv6 address must be in brackets", a)
	}
	if len(a) > 253 {
		return fmt.Errorf("address %q is not an IPv4 address or hostname", a)
	}
	labels := strings.Split(a, ".")
	numeric := true
	for _, l := range labels {
		if !hostLabelRe.MatchString(l) {
			return fmt.Errorf("address %q is not an IPv4 address or hostname", a)
		}
		if !allDigits(l) {
			numeric = false
		}
	}
	if numeric {
		return fmt.Errorf("address %q is not a valid IPv4 address", a)
	}
	return nil
}

// dirBuiltins are the built-ins that name absolute directories, so a VOLUME
// source starting with one of them is a host path, not a named volume.
var dirBuiltins = [...]string{"ORCH_PROJECT", "ORCH_DATA", "ORCH_STATE_DIR", "ORCH_CONTAINERS_DIR"}

// ParseVolume parses VOLUME source:dest. dest is absolute; source is an absolute
// path (or starts with a directory built-in such as ${ORCH_DATA}) or a named volume.
func ParseVolume(s string) (Volume, error) {
	src, dst, ok := strings.Cut(s, ":")
	if !ok {
		return Volume{}, fmt.Errorf("want source:destination")
	}
	if strings.Contains(dst, ":") {
		return Volume{}, fmt.Errorf("want source:destination (mount options are not supported)")
	}
	if src == "" {
		return Volume{}, fmt.Errorf("empty source")
	}
	if !strings.HasPrefix(dst, "/") {
		return Volume{}, fmt.Errorf("destination %q must be an absolute path", dst)
	}
	if path.Clean(dst) == "/" {
		return Volume{}, fmt.Errorf("destination must not be /")
	}
	v := Volume{Source: src, Destination: dst}
	switch {
	case strings.HasPrefix(src, "/"):
	case startsWithDirBuiltin(src):
	case volumeNameRe.MatchString(placeholderBuiltins(src, "x")):
		// A name may use built-ins (${CONTAINER_PREFIX}data); their values are
		// checked by the runtime.
		v.IsNamed = true
	default:
		return Volume{}, fmt.Errorf("source %q is neither an absolute path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", src)
	}
	return v, nil
}

func startsWithDirBuiltin(s string) bool {
	for _, b := range dirBuiltins {
		if rest, ok := strings.CutPrefix(s, "${"+b+"}"); ok && (rest == "" || rest[0] == '/') {
			return true
		}
	}
	return false
}

// placeholderBuiltins replaces built-in references with a plain stand-in, so a
// value's shape can be checked before the built-ins have values.
func placeholderBuiltins(s, with string) string {
	out, _, _ := expandVars(s, func(name string) (string, bool) {
		if isBuiltin(name) {
			return with, true
		}
		return "", false
	}, -1)
	return out
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validCPUs reports whether s is a decimal number without sign or exponent
// (^([0-9]+(\.[0-9]*)?|\.[0-9]+)$).
func validCPUs(s string) bool {
	whole, frac, dot := strings.Cut(s, ".")
	if !allDigits(whole) || !allDigits(frac) {
		return false
	}
	return whole != "" || dot && frac != ""
}
