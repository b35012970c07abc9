package containerd

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSpecOpts(t *testing.T) {
	s := &oci.Spec{Process: &specs.Process{Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 1024}, {Type: "RLIMIT_CORE"}}}}
	for _, o := range []oci.SpecOpts{WithRlimit("RLIMIT_NOFILE", 512, 2048), WithRlimit("RLIMIT_NPROC", 64, 64), WithBlkioWeight(300)} {
		if err := o(context.Background(), nil, nil, s); err != nil {
			t.Fatal(err)
		}
	}
	want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 2048}, {Type: "RLIMIT_CORE"}, {Type: "RLIMIT_NPROC", Soft: 64, Hard: 64}}
	if len(s.Process.Rlimits) != len(want) {
		t.Fatalf("rlimits = %+v, want %+v (replaced in place, new ones appended)", s.Process.Rlimits, want)
	}
	for i := range want {
		if s.Process.Rlimits[i] != want[i] {
			t.Errorf("rlimit %d = %+v, want %+v", i, s.Process.Rlimits[i], want[i])
		}
	}
	if w := s.Linux.Resources.BlockIO.Weight; w == nil || *w != 300 {
		t.Errorf("blkio weight = %v, want 300", w)
	}
}
