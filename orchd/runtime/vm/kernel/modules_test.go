package kernel

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestClosureOrdersDependenciesFirst(t *testing.T) {
	dir := t.TempDir()
	dep := strings.Join([]string{
		"kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/netfs/netfs.ko",
		"kernel/net/9p/9pnet.ko:",
		"kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/virtio/virtio_ring.ko:",
		"kernel/fs/netfs/netfs.ko: kernel/fs/fscache/fscache.ko",
		"kernel/fs/fscache/fscache.ko:",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/tty/serial/8250/8250.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	idx, err := LoadModules(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := idx.Closure("9pnet-virtio", "9p", "8250")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, ModName(p))
	}
	pos := func(n string) int { return slices.Index(names, n) }
	for _, n := range []string{"9pnet", "virtio_ring", "9pnet_virtio", "fscache", "netfs", "9p"} {
		if pos(n) < 0 {
			t.Fatalf("%s missing from %v", n, names)
		}
	}
	if len(names) != 6 {
		t.Errorf("closure = %v: want each module once, built-ins skipped", names)
	}
	for _, before := range [][2]string{{"9pnet", "9pnet_virtio"}, {"virtio_ring", "9pnet_virtio"}, {"fscache", "netfs"}, {"netfs", "9p"}, {"9pnet", "9p"}} {
		if pos(before[0]) > pos(before[1]) {
			t.Errorf("%s loads after %s: %v", before[0], before[1], names)
		}
	}
	if !idx.Builtin("8250") {
		t.Error("8250 not reported built in")
	}
	if _, err := idx.Closure("nosuch"); err == nil {
		t.Error("unknown module accepted")
	}
}
