package leaf

import (
	"context"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A spec the leaf makes declares SpecVersion, not the client library's own
// runtime-spec version, which crun 1.8 refuses ("unknown version specified").
func TestSpecDeclaresTheVersionItUses(t *testing.T) {
	ctx := namespaces.WithNamespace(context.Background(), "test")
	plain, err := oci.GenerateSpecWithPlatform(ctx, nil, "linux/amd64", &containers.Container{ID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	leafs, err := oci.GenerateSpecWithPlatform(ctx, nil, "linux/amd64", &containers.Container{ID: "c"}, withSpecVersion)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Version != specs.Version {
		t.Fatalf("the library's default spec declares %q, want its module's %q", plain.Version, specs.Version)
	}
	if leafs.Version != SpecVersion {
		t.Errorf("the leaf's spec declares %q, want %q", leafs.Version, SpecVersion)
	}
}
