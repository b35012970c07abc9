package images_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	cimages "github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/oci"

	"github.com/orchd/orchd/fixtures/probe/report"
	"github.com/orchd/orchd/harness/daemon/daemontest"
	"github.com/orchd/orchd/harness/images"
	"github.com/orchd/orchd/harness/images/imagestest"
	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

// testNamespace is unique per test process: runc state and cgroups are
// per host, shared by concurrent test runs.
func testNamespace() string { return daemontest.Namespace("orchd-images-test") }

// TestContainerdImportAndRun imports every fixture image into a real private
// containerd (Debian's 1.6 and the pinned 2.x), unpacks it with overlayfs,
// runs the probe's report in a runc container and checks what it saw.
func TestContainerdImportAndRun(t *testing.T) {
	set := build(t)
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			d := daemontest.Start(t, tc)
			c := daemontest.Client(t, d, testNamespace())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			fifos := t.TempDir()

			for _, l := range set.Layouts {
				imgs, err := images.Import(ctx, c, l.Dir)
				if err != nil {
					t.Fatalf("%s: %v", l.Name, err)
				}
				if len(imgs) != 1 || imgs[0].Name != l.Ref || imgs[0].Target.Digest != l.ManifestDigest {
					t.Fatalf("%s: imported %+v, want one image %s -> %s", l.Name, imgs, l.Ref, l.ManifestDigest)
				}
			}

			// Limits set in the spec must show in the probe's report.
			const memLimit = 96 << 20
			probe := runReport(ctx, t, c, set, images.Probe, fifos, nil,
				imagestest.WithCgroupfs(),
				oci.WithMemoryLimit(memLimit),
				oci.WithCPUCFS(50000, 100000),
				oci.WithPidsLimit(64),
				crd.WithBlkioWeight(300),
				crd.WithRlimit("RLIMIT_NOFILE", 512, 2048),
				oci.WithHostname("fixture-host"),
				oci.WithEnv([]string{"FIXTURE=yes"}),
			)
			if probe.UID != 0 || probe.GID != 0 || probe.Cwd != "/" || probe.Env["PATH"] != images.DefaultPath {
				t.Errorf("probe: uid %d gid %d cwd %q PATH %q", probe.UID, probe.GID, probe.Cwd, probe.Env["PATH"])
			}
			if root, ok := probe.MountAt("/"); !ok || root.FSType != "overlay" {
				t.Errorf("probe: root mount %+v, want overlay", root)
			}
			if probe.PID != 1 {
				t.Errorf("probe: pid %d, want 1 (own PID namespace)", probe.PID)
			}
			if probe.Hostname != "fixture-host" || probe.Env["FIXTURE"] != "yes" {
				t.Errorf("probe: hostname %q env FIXTURE %q", probe.Hostname, probe.Env["FIXTURE"])
			}
			if got := probe.Rlimits["NOFILE"]; got != (report.Rlimit{Soft: 512, Hard: 2048}) {
				t.Errorf("probe: NOFILE %+v, want 512/2048 (notes %v)", got, probe.Notes)
			}
			cg := probe.Cgroup
			if cg.Version == 0 {
				t.Fatalf("probe: no cgroup seen: %+v\nmounts: %+v", cg, probe.Mounts)
			}
			t.Logf("probe cgroup: version %d path %s io weight %s=%v dirs %v", cg.Version, cg.Path, cg.IOWeightFile, deref(cg.IOWeight), cg.Dirs)
			checkLimit(t, "memory", cg.MemoryLimitBytes, memLimit)
			checkLimit(t, "cpu quota", cg.CPUQuotaUS, 50000)
			checkLimit(t, "cpu period", cg.CPUPeriodUS, 100000)
			checkLimit(t, "pids", cg.PidsMax, 64)
			if cg.IOWeight == nil {
				t.Logf("probe: no IO weight file in this kernel's blkio/io controller: %+v", cg.IOWeights)
			} else if cg.IOWeightFile == "blkio.weight" || cg.IOWeightFile == "blkio.bfq.weight" || cg.IOWeightFile == "io.bfq.weight" {
				checkLimit(t, cg.IOWeightFile, cg.IOWeight, 300)
			}

			// Without limits the probe reports them as unlimited, not absent.
			plain := runReport(ctx, t, c, set, images.Probe, fifos, nil, imagestest.WithCgroupfs())
			checkLimit(t, "default memory", plain.Cgroup.MemoryLimitBytes, report.Unlimited)
			checkLimit(t, "default cpu quota", plain.Cgroup.CPUQuotaUS, report.Unlimited)

			user := runReport(ctx, t, c, set, images.ProbeUser, fifos, []string{images.AppHome})
			if user.UID != images.AppUID || user.GID != images.AppGID {
				t.Errorf("probe-user: uid %d gid %d, want %d:%d", user.UID, user.GID, images.AppUID, images.AppGID)
			}
			if h := user.Paths[images.AppHome]; !h.Exists || h.UID != images.AppUID || h.Type != "dir" {
				t.Errorf("probe-user: %s = %+v", images.AppHome, h)
			}

			layers := runReport(ctx, t, c, set, images.ProbeLayers, fifos,
				append(append([]string{}, images.LayersPresent...), images.LayersAbsent...))
			for _, p := range images.LayersPresent {
				if !layers.Paths[p].Exists {
					t.Errorf("probe-layers: %s missing: %+v", p, layers.Paths[p])
				}
			}
			for _, p := range images.LayersAbsent {
				if info := layers.Paths[p]; info.Exists || info.Error != "" {
					t.Errorf("probe-layers: %s should be whited out: %+v", p, info)
				}
			}

			cleanNamespace(ctx, t, c)
		})
	}
}

// TestCtrImportTar checks that ctr (the toolchain's own CLI) imports a tar of
// a layout under the annotated ref without naming flags.
func TestCtrImportTar(t *testing.T) {
	set := build(t)
	l, err := set.Get(images.ProbeLayers)
	if err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "probe-layers.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := images.WriteTar(l.Dir, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			d := daemontest.Start(t, tc)
			c := daemontest.Client(t, d, testNamespace())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()

			variants := [][]string{nil}
			if tc.Major() >= 2 {
				// 2.x imports through the Transfer service by default; --local is the client path.
				variants = append(variants, []string{"--local"})
			}
			for _, extra := range variants {
				args := append([]string{"--address", d.Address(), "-n", testNamespace(), "images", "import"}, extra...)
				args = append(args, tarPath)
				cmd := exec.CommandContext(ctx, tc.Ctr.Path, args...)
				var out bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &out
				if err := cmd.Run(); err != nil {
					t.Fatalf("ctr %s: %v\n%s", strings.Join(args, " "), err, out.String())
				}
				img, err := c.ImageService().Get(ctx, l.Ref)
				if err != nil {
					t.Fatalf("ctr import %v: image %s not found: %v\n%s", extra, l.Ref, err, out.String())
				}
				if img.Target.Digest != l.ManifestDigest {
					t.Errorf("ctr import %v: %s -> %s, want %s", extra, l.Ref, img.Target.Digest, l.ManifestDigest)
				}
				// Only the annotated name: no "import-<date>" or digest refs.
				all, err := c.ImageService().List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(all) != 1 {
					t.Errorf("ctr import %v created %d images: %v", extra, len(all), imageNames(all))
				}
				if err := c.ImageService().Delete(ctx, l.Ref, cimages.SynchronousDelete()); err != nil {
					t.Fatal(err)
				}
			}
			cleanNamespace(ctx, t, c)
		})
	}
}

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

func checkLimit(t *testing.T, what string, got *int64, want int64) {
	t.Helper()
	if got == nil || *got != want {
		t.Errorf("%s: got %v, want %d", what, deref(got), want)
	}
}

func deref(p *int64) any {
	if p == nil {
		return "nil"
	}
	return *p
}

// runReport runs `probe report --stat PATHS...` in a container of the named image.
func runReport(ctx context.Context, t *testing.T, c *client.Client, set *images.Set, name, fifos string, paths []string, opts ...oci.SpecOpts) *report.Report {
	t.Helper()
	l, err := set.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	img, err := c.GetImage(ctx, l.Ref)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	args := []string{"report"}
	for _, p := range paths {
		args = append(args, "--stat", p)
	}
	res, err := imagestest.Run(ctx, c, img, "fixture-"+name, fifos, args, opts...)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", name, res.ExitCode, res.Stdout, res.Stderr)
	}
	rep, err := res.Report()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(rep.Errors) > 0 {
		t.Errorf("%s: probe could not collect: %v", name, rep.Errors)
	}
	return rep
}

// cleanNamespace deletes the images (synchronous GC) and asserts that no
// container or snapshot remains.
func cleanNamespace(ctx context.Context, t *testing.T, c *client.Client) {
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
	err = c.SnapshotService(imagestest.Snapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		snaps = append(snaps, info.Name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) > 0 {
		t.Errorf("snapshots left after deleting the images: %v", snaps)
	}
}

func imageNames(imgs []cimages.Image) []string {
	var n []string
	for _, i := range imgs {
		n = append(n, i.Name)
	}
	return n
}

// TestProbeSignalsAsPid1 pins down the probe's stop behaviour as a
// container's PID 1, which the supervisor suites rely on.
func TestProbeSignalsAsPid1(t *testing.T) {
	set := build(t)
	l, err := set.Get(images.Probe)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range daemontest.Toolchains(t) {
		t.Run(tc.Name, func(t *testing.T) {
			d := daemontest.Start(t, tc)
			c := daemontest.Client(t, d, testNamespace())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if _, err := images.Import(ctx, c, l.Dir); err != nil {
				t.Fatal(err)
			}
			img, err := c.GetImage(ctx, l.Ref)
			if err != nil {
				t.Fatal(err)
			}
			fifos := t.TempDir()

			for _, tt := range []struct {
				name   string
				args   []string
				ready  string
				term   bool   // whether SIGTERM alone ends it
				after  string // stderr line proving the SIGTERM was seen
				expect uint32
			}{
				{"sleep", []string{"sleep", "forever"}, "probe: sleep: ready", true, "received terminated", 143},
				{"term-exit", []string{"term-exit", "7"}, "probe: term-exit: ready", true, "exiting 7", 7},
				{"term-ignore", []string{"term-ignore"}, "probe: term-ignore: ready", false, "ignoring terminated", 137},
				{"pid1-raw", []string{"pid1-raw"}, "probe: pid1-raw: ready", false, "", 137},
			} {
				task, err := imagestest.Start(ctx, c, img, "signal-"+tt.name, fifos, tt.args)
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				func() {
					defer func() {
						if err := task.Delete(context.WithoutCancel(ctx)); err != nil {
							t.Errorf("%s: %v", tt.name, err)
						}
					}()
					if err := task.WaitStderr(ctx, tt.ready); err != nil {
						t.Fatalf("%s: %v", tt.name, err)
					}
					if task.Pid() == 0 {
						t.Fatalf("%s: no pid", tt.name)
					}
					if err := task.Kill(ctx, syscall.SIGTERM); err != nil {
						t.Fatal(err)
					}
					if tt.after != "" {
						if err := task.WaitStderr(ctx, tt.after); err != nil && !task.Exited() {
							t.Fatalf("%s: %v", tt.name, err)
						}
					}
					if !tt.term {
						// It must survive SIGTERM: watch for a while, then SIGKILL.
						watch, stop := context.WithTimeout(ctx, time.Second)
						defer stop()
						tick := time.NewTicker(50 * time.Millisecond)
						defer tick.Stop()
						for watch.Err() == nil {
							if task.Exited() {
								t.Fatalf("%s: exited after SIGTERM; stderr %q", tt.name, task.Stderr())
							}
							select {
							case <-watch.Done():
							case <-tick.C:
							}
						}
						if err := task.Kill(ctx, syscall.SIGKILL); err != nil {
							t.Fatal(err)
						}
					}
					code, err := task.Wait(ctx)
					if err != nil {
						t.Fatalf("%s: %v", tt.name, err)
					}
					if code != tt.expect {
						t.Errorf("%s: exit %d, want %d; stderr %q", tt.name, code, tt.expect, task.Stderr())
					}
				}()
			}

			res, err := imagestest.Run(ctx, c, img, "crash", fifos, []string{"crash-after", "50ms", "9"})
			if err != nil || res.ExitCode != 9 {
				t.Errorf("crash-after: exit %d, %v; stderr %q", res.ExitCode, err, res.Stderr)
			}
			cleanNamespace(ctx, t, c)
		})
	}
}
