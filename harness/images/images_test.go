package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// buildOnce builds the fixture set into a temp dir (the probe is compiled
// once per source hash into the user cache; later builds reuse it).
func buildOnce(t *testing.T) *Set {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	set, err := Build(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return set
}

func TestBuildWritesValidLayouts(t *testing.T) {
	set := buildOnce(t)
	if got := names(set); !reflect.DeepEqual(got, Names()) {
		t.Fatalf("built %v, want %v", got, Names())
	}
	for _, l := range set.Layouts {
		if err := Verify(l.Dir); err != nil {
			t.Errorf("%s: %v", l.Name, err)
		}
		if l.Ref != Ref(l.Name) || l.Dir != filepath.Join(set.Dir, l.Name) || l.Platform == "" {
			t.Errorf("%s: layout %+v", l.Name, l)
		}
		var idx ocispec.Index
		readJSONT(t, filepath.Join(l.Dir, "index.json"), &idx)
		e := idx.Manifests[0]
		if e.Digest != l.ManifestDigest {
			t.Errorf("%s: index digest %s, layout says %s", l.Name, e.Digest, l.ManifestDigest)
		}
		if e.Annotations[ocispec.AnnotationRefName] != l.Ref || e.Annotations[AnnotationContainerdImageName] != l.Ref {
			t.Errorf("%s: annotations %v, want ref %s", l.Name, e.Annotations, l.Ref)
		}
		if e.Platform == nil || e.Platform.OS != "linux" {
			t.Errorf("%s: platform %v", l.Name, e.Platform)
		}
	}
	// Leftover temp dirs would mean a failed swap.
	entries, err := os.ReadDir(set.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(Names()) {
		t.Errorf("output dir holds %d entries, want %d", len(entries), len(Names()))
	}
}

func TestImageConfigs(t *testing.T) {
	set := buildOnce(t)
	for _, l := range set.Layouts {
		img := config(t, l)
		c := img.Config
		if !reflect.DeepEqual(c.Entrypoint, []string{"/probe"}) || !reflect.DeepEqual(c.Cmd, []string{"sleep", "forever"}) ||
			c.WorkingDir != "/" || !slices.Contains(c.Env, "PATH="+DefaultPath) {
			t.Errorf("%s: config %+v", l.Name, c)
		}
		wantUser := ""
		if l.Name == ProbeUser {
			wantUser = AppUser
		}
		if c.User != wantUser {
			t.Errorf("%s: user %q, want %q", l.Name, c.User, wantUser)
		}
	}
}

func TestLayerContents(t *testing.T) {
	set := buildOnce(t)

	probe := layers(t, mustGet(t, set, Probe))
	if len(probe) != 1 {
		t.Fatalf("probe: %d layers, want 1", len(probe))
	}
	base := probe[0]
	for _, name := range []string{"probe", "etc/passwd", "etc/group", "etc/hosts", "etc/resolv.conf", "etc/hostname", "tmp/"} {
		if _, ok := base[name]; !ok {
			t.Errorf("base layer lacks %s", name)
		}
	}
	if h := base["probe"]; h.Mode&0o111 == 0 || h.Size < 1<<20 {
		t.Errorf("probe entry %+v: want an executable binary", h)
	}
	if h := base["tmp/"]; h.Mode&0o1777 != 0o1777 {
		t.Errorf("tmp mode %o, want 1777", h.Mode)
	}

	user := layers(t, mustGet(t, set, ProbeUser))
	if len(user) != 2 {
		t.Fatalf("probe-user: %d layers, want 2", len(user))
	}
	if h := user[1]["home/app/"]; h == nil || h.Uid != AppUID || h.Gid != AppGID {
		t.Errorf("probe-user home/app: %+v", h)
	}

	ls := layers(t, mustGet(t, set, ProbeLayers))
	if len(ls) != 3 {
		t.Fatalf("probe-layers: %d layers, want 3", len(ls))
	}
	for _, name := range []string{"data/old.txt", "data/dir/x", "data/dir/sub/y"} {
		if _, ok := ls[1][name]; !ok {
			t.Errorf("data layer lacks %s", name)
		}
	}
	for _, name := range []string{"data/.wh.old.txt", "data/dir/.wh..wh..opq", "data/new.txt", "data/dir/z"} {
		if _, ok := ls[2][name]; !ok {
			t.Errorf("whiteout layer lacks %s", name)
		}
	}
}

func TestBuildIsReproducible(t *testing.T) {
	a, b := buildOnce(t), buildOnce(t)
	for i := range a.Layouts {
		if a.Layouts[i].ManifestDigest != b.Layouts[i].ManifestDigest {
			t.Errorf("%s: %s then %s", a.Layouts[i].Name, a.Layouts[i].ManifestDigest, b.Layouts[i].ManifestDigest)
		}
	}
	// Rebuilding into the same dir replaces the layouts in place.
	again, err := Build(context.Background(), a.Dir, WithProbeBinary(a.ProbeBinary))
	if err != nil {
		t.Fatal(err)
	}
	if again.Layouts[0].ManifestDigest != a.Layouts[0].ManifestDigest {
		t.Error("rebuild with the same probe changed the digest")
	}
}

func TestBuildSubsetAndUnknown(t *testing.T) {
	first := buildOnce(t)
	set, err := Build(context.Background(), t.TempDir(), WithNames(ProbeUser), WithProbeBinary(first.ProbeBinary))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(set); !reflect.DeepEqual(got, []string{ProbeUser}) {
		t.Errorf("built %v", got)
	}
	if _, err := Build(context.Background(), t.TempDir(), WithNames("nope"), WithProbeBinary(first.ProbeBinary)); err == nil {
		t.Error("unknown image name accepted")
	}
	if _, err := Build(context.Background(), t.TempDir(), WithProbeBinary(filepath.Join(t.TempDir(), "missing"))); err == nil {
		t.Error("missing probe binary accepted")
	}
}

func TestLoad(t *testing.T) {
	set := buildOnce(t)
	loaded, err := Load(set.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded.Layouts, set.Layouts) {
		t.Errorf("Load:\n got %+v\nwant %+v", loaded.Layouts, set.Layouts)
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("Load of an empty dir succeeded")
	}
}

func TestWriteTar(t *testing.T) {
	set := buildOnce(t)
	l := mustGet(t, set, ProbeLayers)
	var buf bytes.Buffer
	if err := WriteTar(l.Dir, &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var got []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name)
	}
	// oci-layout, index.json, then base + data + whiteout layers, config, manifest.
	if len(got) != 2+3+2 || got[0] != "oci-layout" || got[1] != "index.json" {
		t.Errorf("tar members %v", got)
	}
	if !slices.Contains(got, "blobs/sha256/"+l.ManifestDigest.Encoded()) {
		t.Errorf("tar lacks the manifest blob: %v", got)
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	set := buildOnce(t)
	l := mustGet(t, set, Probe)
	blob := filepath.Join(l.Dir, "blobs", "sha256", l.ConfigDigest.Encoded())
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 1
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Verify(l.Dir); err == nil {
		t.Fatal("Verify accepted a corrupted config blob")
	}
}

func names(s *Set) []string {
	var n []string
	for _, l := range s.Layouts {
		n = append(n, l.Name)
	}
	return n
}

func mustGet(t *testing.T, s *Set, name string) Layout {
	t.Helper()
	l, err := s.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func readJSONT(t *testing.T, p string, v any) {
	t.Helper()
	if err := readJSON(p, v); err != nil {
		t.Fatal(err)
	}
}

func manifest(t *testing.T, l Layout) ocispec.Manifest {
	t.Helper()
	b, err := readBlob(l.Dir, ocispec.Descriptor{Digest: l.ManifestDigest, Size: blobSize(t, l, l.ManifestDigest.Encoded())})
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func config(t *testing.T, l Layout) ocispec.Image {
	t.Helper()
	m := manifest(t, l)
	b, err := readBlob(l.Dir, m.Config)
	if err != nil {
		t.Fatal(err)
	}
	var img ocispec.Image
	if err := json.Unmarshal(b, &img); err != nil {
		t.Fatal(err)
	}
	return img
}

func blobSize(t *testing.T, l Layout, hex string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(l.Dir, "blobs", "sha256", hex))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// layers returns each layer's tar headers by name.
func layers(t *testing.T, l Layout) []map[string]*tar.Header {
	t.Helper()
	var out []map[string]*tar.Header
	for _, d := range manifest(t, l).Layers {
		b, err := readBlob(l.Dir, d)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(zr)
		hs := map[string]*tar.Header{}
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			hs[h.Name] = h
		}
		out = append(out, hs)
	}
	return out
}

// Concurrent builders (e.g. parallel suite processes) into one dir all succeed
// and leave valid layouts.
func TestConcurrentBuilds(t *testing.T) {
	first := buildOnce(t)
	dir := t.TempDir()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := Build(context.Background(), dir, WithProbeBinary(first.ProbeBinary))
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range set.Layouts {
		if err := Verify(l.Dir); err != nil {
			t.Error(err)
		}
	}
}
