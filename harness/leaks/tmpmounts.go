package leaks

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/orchd/orchd/orchd/procfs"
)

// Why: containerd mounts a snapshot under <root>/tmpmounts while it applies
// a layer (unpack) or reads a file from it. The mount point names no
// namespace, so a suite unpacking in its own namespace would look like a
// leak in every other suite's check against the same daemon. Such a mount is
// attributed through the snapshot it mounts: the snapshotter's dir ids
// (<snapshotter>/snapshots/<n>) of every other namespace's active snapshots.

// tmpMountsDir is where containerd mounts snapshots transiently.
const tmpMountsDir = "tmpmounts"

// snapshotDirRE finds snapshot dirs in mount sources and options.
var snapshotDirRE = regexp.MustCompile(`io\.containerd\.snapshotter\.v1\.([a-z0-9-]+)/snapshots/([0-9]+)`)

// snapshotDirs lists the "<snapshotter>/<n>" dirs named in the texts.
func snapshotDirs(texts ...string) []string {
	var out []string
	for _, t := range texts {
		for _, m := range snapshotDirRE.FindAllStringSubmatch(t, -1) {
			out = append(out, m[1]+"/"+m[2])
		}
	}
	return out
}

// isTmpMount reports whether m is a transient mount of the daemon rooted at root.
func isTmpMount(m procfs.Mount, root string) bool {
	return root != "" && procfs.Under(m.Point, filepath.Join(root, tmpMountsDir))
}

// foreignDirs maps the snapshot dirs of active snapshots in every namespace
// but ns to that namespace.
func foreignDirs(ctx context.Context, c *client.Client, ns string, sns []string) (map[string]string, error) {
	all, err := c.NamespaceService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	out := map[string]string{}
	for _, other := range all {
		if other == ns {
			continue
		}
		octx := namespaces.WithNamespace(ctx, other)
		for _, sn := range sns {
			svc := c.SnapshotService(sn)
			var active []string
			// A snapshot removed while we walk is simply not attributed.
			_ = svc.Walk(octx, func(_ context.Context, info snapshots.Info) error {
				if info.Kind != snapshots.KindCommitted {
					active = append(active, info.Name)
				}
				return nil
			})
			for _, key := range active {
				ms, err := svc.Mounts(octx, key)
				if err != nil {
					continue
				}
				for _, m := range ms {
					for _, d := range snapshotDirs(append([]string{m.Source}, m.Options...)...) {
						out[d] = other
					}
				}
			}
		}
	}
	return out, nil
}

// dropForeignTmpMounts removes from ms the transient mounts that belong to
// another namespace's snapshot, and those gone by a second look (a transient
// mount is unmounted before its snapshot is committed, so one whose snapshot
// was not found in time is gone on the second read). What stays is ours or
// nobody's: a leak.
func dropForeignTmpMounts(ctx context.Context, c *client.Client, t Target, sns []string, ms []procfs.Mount) ([]procfs.Mount, error) {
	if !slices.ContainsFunc(ms, func(m procfs.Mount) bool { return isTmpMount(m, t.Root) }) {
		return ms, nil
	}
	foreign, err := foreignDirs(namespaces.WithNamespace(ctx, t.Namespace), c, t.Namespace, sns)
	if err != nil {
		return nil, err
	}
	again, err := procfs.Mounts()
	if err != nil {
		return nil, err
	}
	still := map[string]bool{}
	for _, m := range again {
		still[m.Point] = true
	}
	return slices.DeleteFunc(ms, func(m procfs.Mount) bool {
		if !isTmpMount(m, t.Root) {
			return false
		}
		if !still[m.Point] {
			return true
		}
		for _, d := range snapshotDirs(m.Root, m.SuperOptions) {
			if _, ok := foreign[d]; ok {
				return true
			}
		}
		return false
	}), nil
}
