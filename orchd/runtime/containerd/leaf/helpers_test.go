package leaf

import (
	"reflect"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestImageArgs(t *testing.T) {
	cfg := ocispec.ImageConfig{Entrypoint: []string{"/e"}, Cmd: []string{"c1", "c2"}}
	cases := []struct {
		name       string
		entry, cmd []string
		want       []string
	}{
		{"image", nil, nil, []string{"/e", "c1", "c2"}},
		{"cmd", nil, []string{"x"}, []string{"/e", "x"}},
		{"entrypoint resets cmd", []string{"/n"}, nil, []string{"/n"}},
		{"both", []string{"/n"}, []string{"y"}, []string{"/n", "y"}},
	}
	for _, c := range cases {
		got, err := imageArgs(cfg, c.entry, c.cmd)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q %v, want %q", c.name, got, err, c.want)
		}
	}
	if _, err := imageArgs(ocispec.ImageConfig{}, nil, nil); err == nil {
		t.Error("no args: no error")
	}
}

func TestPickManifest(t *testing.T) {
	m := func(ref string) ocispec.Descriptor {
		return ocispec.Descriptor{Digest: digest.FromString(ref), Annotations: map[string]string{ocispec.AnnotationRefName: ref}}
	}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{m("a.io/x:v1"), m("latest")}}
	for tag, want := range map[string]string{"v1": "a.io/x:v1", "latest": "latest", "": "latest"} {
		got, err := pickManifest(idx, tag)
		if err != nil || got.Annotations[ocispec.AnnotationRefName] != want {
			t.Errorf("tag %q: %v %v, want %s", tag, got.Annotations, err, want)
		}
	}
	if _, err := pickManifest(idx, "nope"); err == nil {
		t.Error("unknown tag: no error")
	}
	if _, err := pickManifest(ocispec.Index{Manifests: []ocispec.Descriptor{m("a"), m("b")}}, ""); err == nil {
		t.Error("ambiguous: no error")
	}
}

func TestLayoutRef(t *testing.T) {
	g := &imageGetter{projectDir: "/proj"}
	cases := []struct{ ref, dir, tag string }{
		{"oci-layout:///l/probe", "/l/probe", ""},
		{"oci-layout:///l/probe:v2", "/l/probe", "v2"},
		{"oci-layout://rel/probe:v2", "/proj/rel/probe", "v2"},
		{"/l/probe", "/l/probe", ""},
		{"./images/p", "/proj/images/p", ""},
	}
	for _, c := range cases {
		dir, tag, ok := g.layoutRef(c.ref)
		if !ok || dir != c.dir || tag != c.tag {
			t.Errorf("%s: %q %q %v, want %q %q", c.ref, dir, tag, ok, c.dir, c.tag)
		}
	}
	for _, ref := range []string{"nginx", "docker.io/library/nginx:1", "127.0.0.1:5000/probe:latest"} {
		if _, _, ok := g.layoutRef(ref); ok {
			t.Errorf("%s taken for a layout", ref)
		}
	}
}

func TestStopGrace(t *testing.T) {
	for in, want := range map[string]string{"10s": "7s", "3s": "2s", "1m0s": "57s"} {
		d, _ := time.ParseDuration(in)
		if got := stopGrace(d).String(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
