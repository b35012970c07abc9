package leaf

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIOWeightUnsupported(t *testing.T) {
	tree := func(files ...string) string {
		root := t.TempDir()
		for _, f := range files {
			p := filepath.Join(root, f)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	cfq := tree("blkio/blkio.weight")
	bfq := tree("blkio/blkio.bfq.io_service_bytes")
	none := tree("blkio/blkio.throttle.io_serviced")
	v2 := tree("cgroup.controllers")
	for _, c := range []struct {
		name    string
		h       cgroupHost
		applied bool
	}{
		{"cfq", cgroupHost{root: cfq}, true},
		{"cfq, cfq-only runtime", cgroupHost{root: cfq, cfqWeightOnly: true}, true},
		{"bfq", cgroupHost{root: bfq}, true},
		{"bfq, cfq-only runtime (runsc)", cgroupHost{root: bfq, cfqWeightOnly: true}, false},
		{"no scheduler", cgroupHost{root: none}, false},
		{"v2 without io", cgroupHost{root: v2}, false},
	} {
		if why := c.h.ioWeightUnsupported(); (why == "") != c.applied {
			t.Errorf("%s: applied %v, want %v (%q)", c.name, why == "", c.applied, why)
		}
	}
}
