package leaf

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/errdefs"

	crd "github.com/orchd/orchd/orchd/runtime/containerd"
)

// RECREATE never (the default) keeps a service's container and its writable
// snapshot between starts, as `docker restart` does: a file the previous run
// wrote into its root filesystem is still there. The container is reused only
// while it was made from the same run spec (image, ENV and ENV_FILE contents,
// everything the spec carries), recorded in a label; otherwise, and always
// with RECREATE always, a start makes a fresh container and snapshot. The
// container of a service that ended stays until the next start or fell; fell
// (Sweep) removes both kinds.

// LabelSpecHash records the run spec a container was created from.
const LabelSpecHash = "orchd.spec-hash"

// keeps reports whether the service's container outlives a start. A oneshot
// is never started again by its supervisor, so its container goes when it
// ends.
func (l *leaf) keeps() bool {
	return l.rs.Service.Recreate != recreateAlways && !l.rs.Service.Oneshot
}

// recreateAlways is RECREATE always in the spec JSON.
const recreateAlways = "always"

// specHash hashes the run spec and the ENV_FILE contents it names.
func specHash(rs *crd.RunSpec) (string, error) {
	b, err := rs.Encode()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(b)
	for _, f := range rs.EnvFiles {
		c, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("ENV_FILE %s: %w", f, err)
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", f, len(c))
		h.Write(c)
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// reusable returns the container a previous start left for this service,
// its stale task removed, when RECREATE never applies and it was made from
// the same spec; nil when a fresh one is needed. absent says the lookup
// found no container at all.
func (l *leaf) reusable(ctx context.Context, hash string) (_ client.Container, absent bool, _ error) {
	if !l.keeps() {
		return nil, false, nil
	}
	ctr, err := l.client().LoadContainer(ctx, l.rs.ContainerID)
	if errdefs.IsNotFound(err) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load container %s: %w", l.rs.ContainerID, err)
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("labels of %s: %w", l.rs.ContainerID, err)
	}
	if labels[LabelSpecHash] != hash {
		l.log.Info("service definition changed: a fresh container", "was", labels[LabelSpecHash], "now", hash)
		return nil, false, nil
	}
	cctx, cancel := l.cleanupCtx()
	defer cancel()
	if err := crd.KillTask(cctx, l.client(), ctr); err != nil {
		return nil, false, err
	}
	l.log.Info("reusing the container and its snapshot (RECREATE never)")
	return ctr, false, nil
}

// withLabel returns a copy of labels with k=v added.
func withLabel(labels map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for lk, lv := range labels {
		out[lk] = lv
	}
	out[k] = v
	return out
}
