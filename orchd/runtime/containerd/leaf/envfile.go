package leaf

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// readEnvFile parses an ENV_FILE: KEY=value lines; blank lines and lines
// starting with # are ignored; an optional "export " prefix and one pair of
// matching quotes around the value are removed.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ENV_FILE %s: %w", path, err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			// The value is not echoed: the file may hold secrets.
			return nil, fmt.Errorf("ENV_FILE %s line %d: want KEY=value", path, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ENV_FILE %s: %w", path, err)
	}
	return out, nil
}
