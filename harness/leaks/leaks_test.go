package leaks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/harness/daemon"
	"github.com/orchd/orchd/harness/daemon/daemontest"
	"github.com/orchd/orchd/harness/leaks"
	"github.com/orchd/orchd/orchd/procfs"

	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

func target(d *daemon.Daemon, ns string) leaks.Target {
	return leaks.Target{Address: d.Address(), Namespace: ns, Root: d.Root(), State: d.State()}
}

func TestFreshDaemonHasNoLeaks(t *testing.T) {
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			d := daemontest.Start(t, tc)
			r, err := leaks.Inspect(ctx, target(d, daemontest.Namespace("fresh")))
			if err != nil {
				t.Fatal(err)
			}
			if !r.Empty() || r.Count() != 0 {
				t.Fatalf("fresh daemon reports leaks:\n%s", r)
			}
		})
	}
}

// TestReportsAndCleans leaks one of each kind for real, checks that Inspect
// names every one, then that Clean leaves nothing (and Inspect agrees).
func TestReportsAndCleans(t *testing.T) {
	sleeper := daemontest.Sleeper(t)
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			d := daemontest.Start(t, tc)
			ns := daemontest.Namespace("leaktest")
			orchdState := t.TempDir()
			tgt := target(d, ns)
			tgt.OrchdStateDir = orchdState
			ctx = namespaces.WithNamespace(ctx, ns)
			c := daemontest.Client(t, d, ns)

			before, err := leaks.Snapshot(ctx, tgt)
			if err != nil {
				t.Fatal(err)
			}
			var fifoDir string
			leakAll(ctx, t, c, sleeper, orchdState, &fifoDir)
			// What orchd's runtime leaves when a leaf dies before its cleanup.
			orchdFifo := filepath.Join(orchdState, "fifo", ns+".web")
			if err := os.MkdirAll(orchdFifo, 0o700); err != nil {
				t.Fatal(err)
			}

			r, err := leaks.Inspect(ctx, tgt)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("inspect:\n%s", r)
			text := r.String()
			for _, want := range []string{
				"task leak-task",
				"container leak-task",
				"container leak-ctr",
				"snapshot overlayfs/leak-snap",
				"snapshot overlayfs/leak-task",
				"lease leak-lease",
				"ingest leak-ingest",
				"image leak-image (not counted)",
				"-id leak-task",
				"process pid ",
				"mount " + filepath.Join(d.State(), "io.containerd.runtime.v2.task", ns, "leak-task", "rootfs"),
				":/" + ns + "/leak-task",
				"file " + filepath.Join(d.State(), "io.containerd.runtime.v2.task", ns, "leak-task"),
				"file " + filepath.Join(crd.RuncRoot, ns, "leak-task"),
				"file " + daemon.ShimSocket(d.Address(), ns, "leak-task", false),
				"task leak-io",
				"file " + fifoDir,
				"file " + orchdFifo,
			} {
				if !strings.Contains(text, want) {
					t.Errorf("report lacks %q", want)
				}
			}
			if r.Empty() {
				t.Fatal("report is empty")
			}
			if want := countAll(r) - len(r.Images); r.Count() != want {
				t.Errorf("Count() = %d, want %d (everything but images)", r.Count(), want)
			}
			diff := leaks.Diff(before, r)
			if diff.Count() != r.Count() {
				t.Errorf("diff against an empty baseline: %d, want %d", diff.Count(), r.Count())
			}
			if again := leaks.Diff(r, r); !again.Empty() {
				t.Errorf("diff of a report with itself:\n%s", again)
			}
			var decoded leaks.Report
			b, err := r.JSON()
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &decoded); err != nil || decoded.Count() != r.Count() {
				t.Errorf("JSON round trip: %v, count %d want %d", err, decoded.Count(), r.Count())
			}

			if err := leaks.Clean(ctx, tgt); err != nil {
				t.Fatalf("clean: %v", err)
			}
			after, err := leaks.Inspect(ctx, tgt)
			if err != nil {
				t.Fatal(err)
			}
			if !after.Empty() {
				t.Fatalf("after Clean:\n%s", after)
			}
			if len(after.Images) != 1 {
				t.Errorf("Clean removed images although they do not count: %v", after.Images)
			}
			if _, err := os.Stat(orchdFifo); !os.IsNotExist(err) {
				t.Errorf("orchd FIFO dir %s survived Clean (%v)", orchdFifo, err)
			}
			if _, err := os.Stat(fifoDir); !os.IsNotExist(err) {
				t.Errorf("FIFO dir %s survived Clean (%v)", fifoDir, err)
			}
			procs, err := procfs.Processes()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range procfs.Shims(procs) {
				if s.Address == d.Address() {
					t.Errorf("shim survived Clean: %s", s.Cmdline())
				}
			}
		})
	}
}

func countAll(r *leaks.Report) int {
	return len(r.Tasks) + len(r.Containers) + len(r.Snapshots) + len(r.Leases) + len(r.Ingests) +
		len(r.Images) + len(r.Shims) + len(r.Processes) + len(r.Mounts) + len(r.Cgroups) + len(r.Files)
}

// leakAll leaves behind: a running task (shim, mount, cgroup, runtime files),
// a container without a task, a snapshot, a lease, an unfinished ingest, an
// image, and an orchd-looking supervisor naming the state dir.
func leakAll(ctx context.Context, t *testing.T, c *client.Client, sleeper, orchdState string, fifoDir *string) {
	t.Helper()
	if _, _, err := daemontest.RunSleeper(ctx, c, "leak-task", sleeper); err != nil {
		t.Fatal(err)
	}
	// A second task with stdio FIFOs under /run/containerd/fifo.
	lctx, done, err := c.WithLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := daemontest.RootfsSnapshot(lctx, c, "leak-io", sleeper); err != nil {
		t.Fatal(err)
	}
	ioCtr, err := c.NewContainer(lctx, "leak-io", client.WithSnapshotter("overlayfs"), client.WithSnapshot("leak-io"),
		client.WithNewSpec(oci.WithProcessArgs("/sleeper"), oci.WithHostNamespace("network")))
	if err != nil {
		t.Fatal(err)
	}
	if err := done(ctx); err != nil {
		t.Fatal(err)
	}
	ioTask, err := ioCtr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, io.Discard, io.Discard)))
	if err != nil {
		t.Fatal(err)
	}
	if err := ioTask.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if fifos := ioTask.IO().Config(); !strings.HasPrefix(fifos.Stdout, leaks.RunDir+"/fifo/") {
		t.Fatalf("stdout FIFO %q is not under %s/fifo", fifos.Stdout, leaks.RunDir)
	} else {
		*fifoDir = filepath.Dir(fifos.Stdout)
	}

	lctx, done, err = c.WithLease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := daemontest.RootfsSnapshot(lctx, c, "leak-snap", sleeper); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewContainer(lctx, "leak-ctr", client.WithSnapshotter("overlayfs"), client.WithSnapshot("leak-snap"), client.WithNewSpec()); err != nil {
		t.Fatal(err)
	}
	if err := done(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LeasesService().Create(ctx, leases.WithID("leak-lease")); err != nil {
		t.Fatal(err)
	}
	w, err := content.OpenWriter(ctx, c.ContentStore(), content.WithRef("leak-ingest"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("half an upload")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // closed without Commit: the ingest stays active
		t.Fatal(err)
	}
	if _, err := c.ImageService().Create(ctx, imageRecord(ctx, t, c)); err != nil {
		t.Fatal(err)
	}
	// A process shaped like "orchd supervise --spec <state>/run/x.json".
	sup := exec.Command(sleeper, "supervise", "--spec", filepath.Join(orchdState, "run", "web.json"))
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	// Reap it as soon as Clean kills it, so it does not linger as a zombie.
	reaped := make(chan struct{})
	go func() { _ = sup.Wait(); close(reaped) }()
	t.Cleanup(func() { _ = sup.Process.Kill(); <-reaped })
}

// imageRecord stores a tiny manifest blob and returns an image naming it.
func imageRecord(ctx context.Context, t *testing.T, c *client.Client) images.Image {
	t.Helper()
	blob := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}`)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if err := content.WriteBlob(ctx, c.ContentStore(), "leak-image-manifest", bytes.NewReader(blob), desc); err != nil {
		t.Fatal(err)
	}
	return images.Image{Name: "leak-image", Target: desc}
}
