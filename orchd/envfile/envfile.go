// Package envfile reads ENV_FILE files, the one format every runtime shares.
package envfile

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Read parses KEY=value lines; blank lines and lines starting with # are
// skipped, an "export " prefix and one pair of matching outer quotes around
// the value are dropped. Errors never echo a value: the file may hold secrets.
func Read(path string) (map[string]string, error) {
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
			return nil, fmt.Errorf("ENV_FILE %s:%d: want KEY=value", path, n)
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

// ReadAll reads files in order; a key in a later file wins.
func ReadAll(paths []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range paths {
		m, err := Read(p)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}
