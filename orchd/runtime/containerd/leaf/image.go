package leaf

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/transfer/image"
	"github.com/containerd/containerd/v2/core/transfer/registry"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/orchd/container"
)

// layoutDomain names images imported from a layout whose ref annotation is a bare tag.
const layoutDomain = "oci-layout.orchd.local"

// transferPlugin is the plugin type a daemon with the Transfer service registers (>= 1.7).
const transferPlugin = "io.containerd.transfer.v1"

// imageGetter fetches a service's image into the namespace and unpacks it.
type imageGetter struct {
	c           *client.Client
	snapshotter string
	projectDir  string
	labels      map[string]string
	log         *slog.Logger
}

// get returns the image for ref, unpacked into the snapshotter: a local OCI
// layout is imported, an image already in the store is used as is, anything
// else is pulled.
func (g *imageGetter) get(ctx context.Context, ref string) (client.Image, error) {
	if dir, tag, ok := container.ParseLayoutRef(ref, g.projectDir); ok {
		return g.fromLayout(ctx, dir, tag)
	}
	name, err := normalize(ref)
	if err != nil {
		return nil, err
	}
	for _, n := range []string{ref, name} {
		img, err := g.c.GetImage(ctx, n)
		if err == nil {
			g.log.Debug("image present", "image", n)
			return img, g.unpack(ctx, img)
		}
		if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("look up image %s: %w", n, err)
		}
	}
	return g.pull(ctx, name)
}

func (g *imageGetter) unpack(ctx context.Context, img client.Image) error {
	ok, err := img.IsUnpacked(ctx, g.snapshotter)
	if err != nil {
		return fmt.Errorf("check unpack of %s: %w", img.Name(), err)
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, g.snapshotter); err != nil {
		return fmt.Errorf("unpack %s into %s: %w", img.Name(), g.snapshotter, err)
	}
	return nil
}

// normalize turns "busybox" into "docker.io/library/busybox:latest".
func normalize(ref string) (string, error) {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: not a valid reference (nor %spath, nor ./PATH or /PATH of an OCI layout): %w", ref, container.LayoutScheme, err)
	}
	return n.String(), nil
}

// layoutImage is what a layout reference resolves to in the image store.
type layoutImage struct {
	name     string // the store name the import gives it
	desc     ocispec.Descriptor
	refName  func(string) string
	dgstName func(digest.Digest) string
}

// resolveLayout reads the layout at dir and names the manifest tag selects,
// without importing anything.
func resolveLayout(dir, tag string) (layoutImage, error) {
	if _, err := os.Stat(filepath.Join(dir, ocispec.ImageLayoutFile)); err != nil {
		return layoutImage{}, fmt.Errorf("image %s: not an OCI image layout (no %s): %w", dir, ocispec.ImageLayoutFile, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return layoutImage{}, fmt.Errorf("image layout %s: %w", dir, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return layoutImage{}, fmt.Errorf("image layout %s: parse index.json: %w", dir, err)
	}
	desc, err := container.PickManifest(idx, tag)
	if err != nil {
		return layoutImage{}, fmt.Errorf("image layout %s: %w", dir, err)
	}
	base := layoutDomain + "/" + sanitize(filepath.Base(dir))
	li := layoutImage{desc: desc}
	li.refName = func(r string) string {
		if n, err := reference.ParseDockerRef(r); err == nil && strings.ContainsAny(r, "/:") {
			return n.String()
		}
		return base + ":" + r // a bare tag such as "latest"
	}
	li.dgstName = func(d digest.Digest) string { return base + "@" + d.String() }
	li.name = desc.Annotations[images.AnnotationImageName]
	if li.name == "" {
		if r := desc.Annotations[ocispec.AnnotationRefName]; r != "" {
			li.name = li.refName(r)
		} else {
			li.name = li.dgstName(desc.Digest)
		}
	}
	return li, nil
}

// ready returns the image for ref when the store already holds it (for a
// layout: under the same name and digest) unpacked into the snapshotter:
// the common case of every start after the first, which needs no image lock.
// Anything else (absent, not unpacked, an error) reports false and is left
// to get, under the lock.
func (g *imageGetter) ready(ctx context.Context, ref string) (client.Image, bool) {
	var names []string
	var want digest.Digest
	if dir, tag, ok := container.ParseLayoutRef(ref, g.projectDir); ok {
		li, err := resolveLayout(dir, tag)
		if err != nil {
			return nil, false
		}
		names, want = []string{li.name}, li.desc.Digest
	} else {
		name, err := normalize(ref)
		if err != nil {
			return nil, false
		}
		names = []string{ref, name}
	}
	for _, n := range names {
		img, err := g.c.GetImage(ctx, n)
		if err != nil {
			continue
		}
		if want != "" && img.Target().Digest != want {
			return nil, false
		}
		ok, err := img.IsUnpacked(ctx, g.snapshotter)
		return img, err == nil && ok
	}
	return nil, false
}

// fromLayout imports the manifest selected by tag from the layout at dir
// (unless the store already holds it under the same name and digest).
func (g *imageGetter) fromLayout(ctx context.Context, dir, tag string) (client.Image, error) {
	li, err := resolveLayout(dir, tag)
	if err != nil {
		return nil, err
	}
	name, desc, refName, dgstName := li.name, li.desc, li.refName, li.dgstName
	if img, err := g.c.GetImage(ctx, name); err == nil && img.Target().Digest == desc.Digest {
		g.log.Debug("image from layout already present", "image", name)
		return img, g.unpack(ctx, img)
	}
	g.log.Info("importing OCI layout", "dir", dir, "image", name)
	// Services sharing a layout import it at once; the image store's
	// update-else-create then loses a race with "already exists", and the
	// next attempt updates the record the winner created.
	for attempt := 1; ; attempt++ {
		err = g.importLayout(ctx, dir, refName, dgstName)
		if err == nil || !errdefs.IsAlreadyExists(err) || attempt == 3 {
			break
		}
		g.log.Debug("concurrent import of the same image; retrying", "image", name, "err", err)
	}
	if err != nil {
		return nil, fmt.Errorf("import OCI layout %s: %w", dir, err)
	}
	img, err := g.c.GetImage(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("import OCI layout %s: image %s: %w", dir, name, err)
	}
	return img, g.unpack(ctx, img)
}

func (g *imageGetter) importLayout(ctx context.Context, dir string, refName func(string) string, dgstName func(digest.Digest) string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeLayoutTar(dir, pw)) }()
	defer pr.Close()
	_, err := g.c.Import(ctx, pr,
		client.WithImageRefTranslator(refName),
		client.WithDigestRef(dgstName),
		client.WithSkipDigestRef(func(n string) bool { return n != "" }),
		client.WithImageLabels(g.labels),
	)
	return err
}

var unsafeName = regexp.MustCompile(`[^a-z0-9._-]+`)

func sanitize(s string) string {
	s = strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(s), "-"), "-._")
	if s == "" {
		return "layout"
	}
	return s
}

// writeLayoutTar streams the layout dir as the tar archive client.Import reads.
func writeLayoutTar(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("archive layout %s: %w", dir, err)
	}
	return tw.Close()
}

// pull fetches name from its registry: through the daemon's Transfer service
// when it has one, else with a client-side pull (containerd 1.6).
func (g *imageGetter) pull(ctx context.Context, name string) (client.Image, error) {
	loopback := isLoopbackRef(name)
	has, err := hasTransfer(ctx, g.c)
	if err != nil {
		return nil, err
	}
	if has {
		g.log.Info("pulling image (transfer service)", "image", name)
		var opts []registry.Opt
		if loopback {
			opts = append(opts, registry.WithDefaultScheme("http"))
		}
		reg, err := registry.NewOCIRegistry(ctx, name, opts...)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", name, err)
		}
		store := image.NewStore(name,
			image.WithUnpack(platforms.DefaultSpec(), g.snapshotter),
			image.WithImageLabels(g.labels))
		if err := g.c.Transfer(ctx, reg, store); err != nil {
			return nil, fmt.Errorf("pull %s (transfer service): %w", name, err)
		}
		img, err := g.c.GetImage(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", name, err)
		}
		return img, g.unpack(ctx, img)
	}
	g.log.Info("pulling image (client pull)", "image", name)
	hosts := docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchLocalhost))
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
	img, err := g.c.Pull(ctx, name,
		client.WithResolver(resolver),
		client.WithPullUnpack,
		client.WithPullSnapshotter(g.snapshotter),
		client.WithPullLabels(g.labels))
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", name, err)
	}
	return img, nil
}

// hasTransfer asks introspection whether the daemon runs the Transfer service.
func hasTransfer(ctx context.Context, c *client.Client) (bool, error) {
	resp, err := c.IntrospectionService().Plugins(ctx, fmt.Sprintf("type==%q", transferPlugin))
	if err != nil {
		return false, fmt.Errorf("introspect plugins: %w", err)
	}
	for _, p := range resp.GetPlugins() {
		if p.GetInitErr() == nil {
			return true, nil
		}
	}
	return false, nil
}

// isLoopbackRef reports whether the reference's registry is on loopback, where
// registries speak plain HTTP.
func isLoopbackRef(name string) bool {
	n, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return false
	}
	ok, err := docker.MatchLocalhost(reference.Domain(n))
	return err == nil && ok
}
