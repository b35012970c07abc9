package framework

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2" //nolint:revive
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/orchd/container"
)

// Image is a fixture image layout.
type Image = images.Layout

// setFile records a built Set next to its layouts, so other processes (and
// ORCHD_IMAGES_DIR users) load exactly what was built.
const setFile = "set.json"

// buildImages builds every fixture image into dir.
func buildImages(ctx context.Context, dir string) {
	set, err := images.Build(ctx, dir)
	Expect(err).NotTo(HaveOccurred(), "build the fixture images (%s)", images.GoInstallHint)
	b, err := json.MarshalIndent(set, "", "  ")
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(filepath.Join(dir, setFile), b, 0o644)).To(Succeed())
	fmt.Fprintf(GinkgoWriter, "fixture images in %s\n", dir)
}

// loadImages reads the layouts in dir: set.json when present, else one
// layout directory per fixture name; each is verified.
func loadImages(_ context.Context, dir string) map[string]Image {
	out := map[string]Image{}
	var set images.Set
	if b, err := os.ReadFile(filepath.Join(dir, setFile)); err == nil {
		Expect(json.Unmarshal(b, &set)).To(Succeed(), "decode %s", filepath.Join(dir, setFile))
	} else {
		for _, n := range images.Names() {
			set.Layouts = append(set.Layouts, images.Layout{Name: n, Dir: filepath.Join(dir, n), Ref: images.Ref(n)})
		}
	}
	for _, l := range set.Layouts {
		Expect(images.Verify(l.Dir)).To(Succeed(), "fixture image %s in %s (rebuild: go run ./cmd/orchd-harness images)", l.Name, l.Dir)
		out[l.Name] = l
	}
	return out
}

// Image returns the FROM value that names a fixture image: its local OCI layout.
func (f *Framework) Image(name string) string {
	GinkgoHelper()
	l, ok := f.Images[name]
	Expect(ok).To(BeTrue(), "fixture image %q not built", name)
	return container.LayoutScheme + l.Dir
}
