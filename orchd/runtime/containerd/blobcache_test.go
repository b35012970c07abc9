package containerd

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// countingStore counts the reads that reach the store.
type countingStore struct {
	content.Store
	reads int
}

func (s *countingStore) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	s.reads++
	return s.Store.ReaderAt(ctx, desc)
}

func put(t *testing.T, s content.Store, data []byte) ocispec.Descriptor {
	t.Helper()
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := content.WriteBlob(context.Background(), s, desc.Digest.String(), bytes.NewReader(data), desc); err != nil {
		t.Fatal(err)
	}
	return desc
}

func read(t *testing.T, s content.Store, desc ocispec.Descriptor) []byte {
	t.Helper()
	ra, err := s.ReaderAt(context.Background(), desc)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	b, err := io.ReadAll(io.NewSectionReader(ra, 0, ra.Size()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBlobCacheReadsASmallBlobOnce(t *testing.T) {
	store, err := local.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingStore{Store: store}
	c := newBlobCache(counted)
	small := []byte(`{"architecture":"amd64"}`)
	big := bytes.Repeat([]byte("x"), maxCachedBlob+1)
	sd, bd := put(t, store, small), put(t, store, big)
	for i := 0; i < 3; i++ {
		if got := read(t, c, sd); !bytes.Equal(got, small) {
			t.Fatalf("read %d of the small blob: %q", i, got)
		}
	}
	if counted.reads != 1 {
		t.Errorf("the small blob reached the store %d times, want once", counted.reads)
	}
	for i := 0; i < 2; i++ {
		if got := read(t, c, bd); !bytes.Equal(got, big) {
			t.Fatalf("read %d of the big blob: %d bytes", i, len(got))
		}
	}
	if counted.reads != 3 {
		t.Errorf("reads reaching the store %d, want 3 (a blob over %d bytes is never kept)", counted.reads, maxCachedBlob)
	}
	// A descriptor whose digest the bytes do not match is not kept.
	wrong := sd
	wrong.Digest = digest.FromString("other")
	if _, err := c.ReaderAt(context.Background(), wrong); err == nil {
		t.Error("a blob missing under its digest was served")
	}
}
