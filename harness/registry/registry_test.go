package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	cimages "github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/core/transfer/image"
	transferreg "github.com/containerd/containerd/v2/core/transfer/registry"
	"github.com/containerd/platforms"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/harness/daemon/daemontest"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/images/imagestest"
	"github.com/orchd/orchd/harness/registry"
)

// testNamespace is unique per test process: runc state and cgroups are
// per host, shared by concurrent test runs.
func testNamespace() string { return daemontest.Namespace("orchd-registry-test") }

func build(t *testing.T) *images.Set {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	set, err := images.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("build fixture images: %v", err)
	}
	return set
}

func serve(t *testing.T, set *images.Set) *registry.Registry {
	t.Helper()
	// Serve's ctx bounds the registry's life; Close ends it at cleanup.
	reg, err := registry.Serve(context.Background(), "127.0.0.1:0", set.Layouts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("close registry: %v", err)
		}
	})
	return reg
}

// TestServeHTTP checks the distribution API directly: catalog, manifests by
// tag with the layout's digest, and blobs.
func TestServeHTTP(t *testing.T) {
	set := build(t)
	reg := serve(t, set)
	if !strings.HasPrefix(reg.Addr(), "127.0.0.1:") || reg.Ref(images.Probe) != reg.Addr()+"/probe:latest" {
		t.Fatalf("addr %s ref %s", reg.Addr(), reg.Ref(images.Probe))
	}
	if got := reg.Names(); !slices.Equal(got, images.Names()) {
		t.Errorf("pushed %v, want %v", got, images.Names())
	}
	var catalog struct{ Repositories []string }
	get(t, "http://"+reg.Addr()+"/v2/_catalog", "", &catalog)
	for _, n := range images.Names() {
		if !slices.Contains(catalog.Repositories, n) {
			t.Errorf("catalog %v lacks %s", catalog.Repositories, n)
		}
	}
	for _, l := range set.Layouts {
		var m ocispec.Manifest
		raw := get(t, "http://"+reg.Addr()+"/v2/"+l.Name+"/manifests/latest", ocispec.MediaTypeImageManifest, &m)
		if d := digest.FromBytes(raw); d != l.ManifestDigest {
			t.Errorf("%s: registry manifest %s, layout %s", l.Name, d, l.ManifestDigest)
		}
		blob := get(t, "http://"+reg.Addr()+"/v2/"+l.Name+"/blobs/"+m.Config.Digest.String(), "", nil)
		if digest.FromBytes(blob) != l.ConfigDigest {
			t.Errorf("%s: config blob digest mismatch", l.Name)
		}
	}
}

func TestCloseAndCancel(t *testing.T) {
	set := build(t)
	l, err := set.Get(images.Probe)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	reg, err := registry.Serve(ctx, "127.0.0.1:0", l)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := reg.Wait(); err != nil {
		t.Errorf("wait after cancel: %v", err)
	}
	if err := reg.Close(); err != nil {
		t.Errorf("close after cancel: %v", err)
	}
	if err := reg.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if _, err := http.Get("http://" + reg.Addr() + "/v2/"); err == nil {
		t.Error("registry still serving after cancel")
	}
	if _, err := registry.Serve(context.Background(), "256.0.0.1:0"); err == nil {
		t.Error("bad listen address accepted")
	}
}

// TestContainerdPull pulls every fixture image from the registry into real
// private daemons (1.6 and 2.x) with the client-side pull over plain HTTP,
// then runs the probe from the pulled image. On 2.x it also pulls through
// the Transfer service and cross-checks with ctr.
func TestContainerdPull(t *testing.T) {
	set := build(t)
	reg := serve(t, set)
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			d := daemontest.Start(t, tc)
			c := daemontest.Client(t, d, testNamespace())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			resolver := docker.NewResolver(docker.ResolverOptions{PlainHTTP: true})

			for _, l := range set.Layouts {
				ref := reg.Ref(l.Name)
				img, err := c.Pull(ctx, ref, client.WithResolver(resolver), client.WithPullUnpack,
					client.WithPullSnapshotter(imagestest.Snapshotter))
				if err != nil {
					t.Fatalf("pull %s: %v", ref, err)
				}
				if img.Target().Digest != l.ManifestDigest {
					t.Errorf("pull %s: digest %s, layout %s", ref, img.Target().Digest, l.ManifestDigest)
				}
				res, err := imagestest.Run(ctx, c, img, "pulled-"+l.Name, t.TempDir(), []string{"report"})
				if err != nil {
					t.Fatal(err)
				}
				rep, err := res.Report()
				if err != nil {
					t.Fatalf("%s: %v", l.Name, err)
				}
				wantUID := 0
				if l.Name == images.ProbeUser {
					wantUID = images.AppUID
				}
				if rep.UID != wantUID || res.ExitCode != 0 {
					t.Errorf("%s: uid %d exit %d", l.Name, rep.UID, res.ExitCode)
				}
			}
			deleteAll(ctx, t, c)

			if tc.Major() < 2 {
				return
			}
			// Transfer service (containerd >= 1.7): the daemon fetches and unpacks.
			ref := reg.Ref(images.ProbeUser)
			src, err := transferreg.NewOCIRegistry(ctx, ref, transferreg.WithDefaultScheme("http"))
			if err != nil {
				t.Fatal(err)
			}
			dst := image.NewStore(ref, image.WithUnpack(platforms.DefaultSpec(), imagestest.Snapshotter))
			if err := c.Transfer(ctx, src, dst); err != nil {
				t.Fatalf("transfer pull %s: %v", ref, err)
			}
			img, err := c.GetImage(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			res, err := imagestest.Run(ctx, c, img, "transferred", t.TempDir(), []string{"report"})
			if err != nil {
				t.Fatal(err)
			}
			if rep, err := res.Report(); err != nil || rep.UID != images.AppUID {
				t.Errorf("transferred probe-user: %+v, %v", rep, err)
			}
			deleteAll(ctx, t, c)

			// ctr's own pull over plain HTTP.
			ref = reg.Ref(images.Probe)
			out, err := exec.CommandContext(ctx, tc.Ctr.Path, "--address", d.Address(), "-n", testNamespace(),
				"images", "pull", "--plain-http", ref).CombinedOutput()
			if err != nil {
				t.Fatalf("ctr pull %s: %v\n%s", ref, err, out)
			}
			if img, err := c.ImageService().Get(ctx, ref); err != nil || img.Target.Digest != set.Layouts[0].ManifestDigest {
				t.Errorf("ctr pull %s: %+v %v", ref, img, err)
			}
			deleteAll(ctx, t, c)
		})
	}
}

// deleteAll removes the namespace's images with synchronous GC and asserts
// no container or snapshot is left.
func deleteAll(ctx context.Context, t *testing.T, c *client.Client) {
	t.Helper()
	left, err := imagestest.Remaining(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	all, err := c.ImageService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range all {
		if err := c.ImageService().Delete(ctx, img.Name, cimages.SynchronousDelete()); err != nil {
			t.Errorf("delete image %s: %v", img.Name, err)
		}
	}
	var snaps []string
	if err := c.SnapshotService(imagestest.Snapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		snaps = append(snaps, info.Name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(snaps) > 0 {
		t.Errorf("snapshots left after deleting the images: %v", snaps)
	}
}

// get fetches url (with an Accept header when given), decodes JSON into v when non-nil.
func get(t *testing.T, url, accept string, v any) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if v != nil {
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return body
}
