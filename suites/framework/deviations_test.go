package framework

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHostStackIOWeight(t *testing.T) {
	write := func(root, rel string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("cpu io memory pids\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v2 := t.TempDir()
	write(v2, "cgroup.controllers")
	if s := hostStack(v2, "runc"); s.CgroupVersion != 2 || !s.IOWeight {
		t.Errorf("v2 with io: %+v", s)
	}
	bfq := t.TempDir()
	write(bfq, "blkio/blkio.bfq.io_serviced")
	if s := hostStack(bfq, "runc"); s.CgroupVersion != 1 || !s.IOWeight {
		t.Errorf("v1 with BFQ: %+v", s)
	}
	if s := hostStack(bfq, "runsc"); s.IOWeight {
		t.Errorf("v1 with BFQ under runsc (which writes only blkio.weight): %+v", s)
	}
	none := t.TempDir()
	write(none, "blkio/blkio.throttle.io_serviced")
	s := hostStack(none, "runc")
	if s.CgroupVersion != 1 || s.IOWeight {
		t.Errorf("v1 without a scheduler weight: %+v", s)
	}
	var found bool
	for _, d := range Deviations() {
		if d.Name == "io-weight-no-scheduler" {
			found = d.applies(s)
		}
	}
	if !found {
		t.Error("io-weight-no-scheduler does not apply to a v1 host without CFQ/BFQ")
	}
}

func TestEnvironmentLabel(t *testing.T) {
	e := Environment{Where: "vm", CgroupMode: "v2", Toolchain: "system", OCIRuntime: "crun"}
	if got := e.Label(); got != "vm-v2-system-crun" {
		t.Fatalf("label %q", got)
	}
}
