package images

import (
	"context"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/client"
	cimages "github.com/containerd/containerd/v2/core/images"
)

// Import streams the layout in layoutDir into containerd with the client's
// archive importer (no ctr, no temp file). The image is named by the index
// annotations, i.e. Layout.Ref for fixture layouts.
func Import(ctx context.Context, c *client.Client, layoutDir string, opts ...client.ImportOpt) ([]cimages.Image, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteTar(layoutDir, pw)) }()
	imgs, err := c.Import(ctx, pr, opts...)
	// Unblock the writer if the importer stopped reading early.
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", layoutDir, err)
	}
	return imgs, nil
}
