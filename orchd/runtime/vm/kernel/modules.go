package kernel

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ModuleIndex maps module names to files and dependencies for one kernel.
type ModuleIndex struct {
	Dir     string
	path    map[string]string   // name -> path relative to Dir
	deps    map[string][]string // name -> direct dependency names
	builtin map[string]bool
}

// ModName normalizes a module name or file name ("9pnet-virtio.ko" -> "9pnet_virtio").
func ModName(s string) string {
	s = filepath.Base(s)
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// LoadModules reads dir/modules.dep (written by depmod or WriteModulesDep) and
// dir/modules.builtin.
func LoadModules(dir string) (*ModuleIndex, error) {
	idx := &ModuleIndex{Dir: dir, path: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("kernel modules: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := ModName(mod)
		idx.path[name] = mod
		for _, d := range strings.Fields(deps) {
			idx.deps[name] = append(idx.deps[name], ModName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read modules.dep: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			idx.builtin[ModName(l)] = true
		}
	}
	return idx, nil
}

// Builtin reports whether the kernel has name compiled in.
func (x *ModuleIndex) Builtin(name string) bool { return x.builtin[ModName(name)] }

// Closure returns the module files (absolute paths) needed to load names, each
// after its dependencies. Built-in modules are skipped; unknown ones are errors.
func (x *ModuleIndex) Closure(names ...string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var visit func(n string, chain []string) error
	visit = func(n string, chain []string) error {
		n = ModName(n)
		if seen[n] {
			return nil
		}
		if x.builtin[n] {
			seen[n] = true
			return nil
		}
		p, ok := x.path[n]
		if !ok {
			return fmt.Errorf("kernel module %s (needed by %v) is neither built in nor in %s", n, chain, x.Dir)
		}
		seen[n] = true
		for _, d := range x.deps[n] {
			if err := visit(d, append(chain, n)); err != nil {
				return err
			}
		}
		out = append(out, filepath.Join(x.Dir, p))
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WriteModulesDep writes dir/modules.dep from each module's .modinfo "depends="
// field, as depmod would (dependencies listed deepest-last is not required: the
// reader orders them itself).
func WriteModulesDep(dir string) error {
	paths := map[string]string{}
	var names []string
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".ko") {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		n := ModName(p)
		paths[n] = rel
		names = append(names, n)
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk modules: %w", err)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, n := range names {
		deps, err := modDepends(filepath.Join(dir, paths[n]))
		if err != nil {
			return err
		}
		buf.WriteString(paths[n] + ":")
		for _, d := range deps {
			if p, ok := paths[ModName(d)]; ok {
				buf.WriteString(" " + p)
			}
		}
		buf.WriteByte('\n')
	}
	tmp := filepath.Join(dir, "modules.dep.tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write modules.dep: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "modules.dep"))
}

func modDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("module %s modinfo: %w", path, err)
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}
