package container

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

func TestArgs(t *testing.T) {
	cfg := ocispec.ImageConfig{Entrypoint: []string{"/e"}, Cmd: []string{"c1", "c2"}}
	cases := []struct {
		name, entry, cmd string
		want             []string
	}{
		{"image", "", "", []string{"/e", "c1", "c2"}},
		{"cmd", "", "x", []string{"/e", "x"}},
		{"entrypoint resets cmd", "/n", "", []string{"/n"}},
		{"both", "/n", "y", []string{"/n", "y"}},
		{"shell words", "", `report --then "sleep 1"`, []string{"/e", "report", "--then", "sleep 1"}},
	}
	for _, c := range cases {
		got, err := Args(cfg, c.entry, c.cmd)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %q %v, want %q", c.name, got, err, c.want)
		}
	}
	if _, err := Args(ocispec.ImageConfig{}, "", ""); !errors.Is(err, ErrNoArgs) {
		t.Errorf("no args: %v, want ErrNoArgs", err)
	}
	if _, err := Args(cfg, `"unterminated`, ""); err == nil || !strings.Contains(err.Error(), "ENTRYPOINT") {
		t.Errorf("bad ENTRYPOINT: %v", err)
	}
}

func TestPickManifest(t *testing.T) {
	m := func(ref string) ocispec.Descriptor {
		return ocispec.Descriptor{Digest: digest.FromString(ref), Annotations: map[string]string{ocispec.AnnotationRefName: ref}}
	}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{m("a.io/x:v1"), m("latest")}}
	for tag, want := range map[string]string{"v1": "a.io/x:v1", "latest": "latest", "": "latest"} {
		got, err := PickManifest(idx, tag)
		if err != nil || got.Annotations[ocispec.AnnotationRefName] != want {
			t.Errorf("tag %q: %v %v, want %s", tag, got.Annotations, err, want)
		}
	}
	if _, err := PickManifest(idx, "nope"); err == nil {
		t.Error("unknown tag: no error")
	}
	if _, err := PickManifest(ocispec.Index{Manifests: []ocispec.Descriptor{m("a"), m("b")}}, ""); err == nil {
		t.Error("ambiguous: no error")
	}
	if _, err := PickManifest(ocispec.Index{}, ""); err == nil {
		t.Error("empty index: no error")
	}
}

func TestParseLayoutRef(t *testing.T) {
	cases := []struct{ ref, dir, tag string }{
		{"oci-layout:///l/probe", "/l/probe", ""},
		{"oci-layout:///l/probe:v2", "/l/probe", "v2"},
		{"oci-layout://rel/probe:v2", "/proj/rel/probe", "v2"},
		{"/l/probe", "/l/probe", ""},
		{"/l/probe:v2", "/l/probe", "v2"},
		{"./images/p", "/proj/images/p", ""},
		{"../images/p:1", "/images/p", "1"},
	}
	for _, c := range cases {
		dir, tag, ok := ParseLayoutRef(c.ref, "/proj")
		if !ok || dir != c.dir || tag != c.tag {
			t.Errorf("%s: %q %q %v, want %q %q", c.ref, dir, tag, ok, c.dir, c.tag)
		}
	}
	for _, ref := range []string{"nginx", "docker.io/library/nginx:1", "127.0.0.1:5000/probe:latest", "images/p"} {
		if _, _, ok := ParseLayoutRef(ref, "/proj"); ok {
			t.Errorf("%s taken for a layout", ref)
		}
	}
	// A colon that belongs to an existing directory's name is not a tag.
	d := filepath.Join(t.TempDir(), "img:v1")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if dir, tag, ok := ParseLayoutRef(d, ""); !ok || dir != d || tag != "" {
		t.Errorf("existing %s: %q %q %v", d, dir, tag, ok)
	}
}

func TestWorkdir(t *testing.T) {
	for _, c := range []struct{ image, w, want string }{
		{"", "", "/"}, {"/srv", "", "/srv"}, {"/srv", "sub", "/srv/sub"}, {"", "sub", "/sub"}, {"/srv", "/abs", "/abs"},
	} {
		if got := Workdir(c.image, c.w); got != c.want {
			t.Errorf("Workdir(%q, %q) = %q, want %q", c.image, c.w, got, c.want)
		}
	}
}

func TestEnv(t *testing.T) {
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "a.env"), filepath.Join(dir, "b.env")
	if err := os.WriteFile(f1, []byte("A=file1\nB=file1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f2, []byte("A=file2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	files, err := ReadEnvFiles([]string{f1, "b.env"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	got := ServiceEnv(files, map[string]string{"B": "env", "C": "env"})
	if want := []string{"A=file2", "B=env", "C=env"}; !slices.Equal(got, want) {
		t.Errorf("ServiceEnv = %q, want %q (files in order, then ENV)", got, want)
	}
	merged := MergeEnv([]string{"PATH=/bin", "A=image", "Z=image"}, got)
	if want := []string{"PATH=/bin", "A=file2", "Z=image", "B=env", "C=env"}; !slices.Equal(merged, want) {
		t.Errorf("MergeEnv = %q, want %q", merged, want)
	}
	if _, err := ReadEnvFiles([]string{"missing.env"}, dir); err == nil || !strings.Contains(err.Error(), "missing.env") {
		t.Errorf("missing env file: %v", err)
	}
}

func TestVolumes(t *testing.T) {
	data, project := t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(project, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Volumes([]spec.Volume{
		{Source: "db", Destination: "/var/lib/db", IsNamed: true},
		{Source: "conf", Destination: "/etc/app"},
		{Source: project, Destination: "/src"},
	}, data, "ns", project)
	if err != nil {
		t.Fatal(err)
	}
	named := contract.NamedVolume(data, "ns", "db")
	want := []Mount{{named, "/var/lib/db"}, {filepath.Join(project, "conf"), "/etc/app"}, {project, "/src"}}
	if !slices.Equal(got, want) {
		t.Errorf("Volumes = %v, want %v", got, want)
	}
	if st, err := os.Stat(named); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("named volume dir: %v %v, want a 0700 directory", st, err)
	}
	for _, bad := range []spec.Volume{
		{Source: "nope", Destination: "/x"},
		{Source: project, Destination: "rel"},
	} {
		if _, err := Volumes([]spec.Volume{bad}, data, "ns", project); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := Volumes([]spec.Volume{{Source: "db", Destination: "/d", IsNamed: true}}, "", "ns", project); err == nil {
		t.Error("named volume without a data dir accepted")
	}
}
