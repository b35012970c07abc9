package containerd

import (
	"bytes"
	"context"
	"sync"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxCachedBlob bounds the blobs blobCache keeps: indexes, manifests and
// configs are a few KiB; layers are never kept.
const maxCachedBlob = 1 << 20

// blobCache is a content store that keeps the small blobs it has read. A
// start reads the image's index, manifest and config several times over
// (the unpack check, the config, the snapshot's parent chain, the spec), each
// read two round trips (info, then the data) queued in containerd behind
// every other leaf's calls; a blob is immutable under its digest, so one
// read per blob is enough for a client's life.
type blobCache struct {
	content.Store
	mu    sync.Mutex
	blobs map[digest.Digest][]byte
}

func newBlobCache(s content.Store) *blobCache {
	return &blobCache{Store: s, blobs: map[digest.Digest][]byte{}}
}

// ReaderAt serves a small blob from memory after its first read.
func (c *blobCache) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if desc.Size <= 0 || desc.Size > maxCachedBlob {
		return c.Store.ReaderAt(ctx, desc)
	}
	c.mu.Lock()
	b, ok := c.blobs[desc.Digest]
	c.mu.Unlock()
	if !ok {
		var err error
		if b, err = content.ReadBlob(ctx, c.Store, desc); err != nil {
			return nil, err
		}
		if digest.FromBytes(b) != desc.Digest {
			// Not what the digest names (a short read): never keep it.
			return c.Store.ReaderAt(ctx, desc)
		}
		c.mu.Lock()
		c.blobs[desc.Digest] = b
		c.mu.Unlock()
	}
	return blobReader{bytes.NewReader(b)}, nil
}

// blobReader is a content.ReaderAt over bytes held in memory.
type blobReader struct{ *bytes.Reader }

func (blobReader) Close() error { return nil }
