package gobuild

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// ModulePath is the module every build here compiles from.
const ModulePath = "github.com/orchd/orchd"

// ModuleRoot locates the orchd module source: `go env GOMOD` from the working
// directory, else the directory this file was compiled from (absent in
// -trimpath builds). It checks the module path so another module's root is
// never mistaken for ours.
func ModuleRoot(ctx context.Context) (string, error) {
	var tried []string
	if out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output(); err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			root := filepath.Dir(gomod)
			if isOurModule(root) {
				return root, nil
			}
			tried = append(tried, root)
		}
	}
	if _, self, _, ok := runtime.Caller(0); ok && filepath.IsAbs(self) {
		for d := filepath.Dir(self); ; d = filepath.Dir(d) {
			if isOurModule(d) {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
		tried = append(tried, filepath.Dir(self))
	}
	return "", fmt.Errorf("no %s go.mod found (tried %v): run from the source tree with Go on PATH, or pass the module root", ModulePath, tried)
}

func isOurModule(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == ModulePath
		}
	}
	return false
}
