package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// FollowFiles writes each of paths (the last opts.Lines lines of each when
// set) to w and, with opts.Follow, what is appended to them until ended
// reports the service will write no more (after one last drain) or ctx
// ends. Duplicate paths are read once; a missing path is an error only when
// none exists and the caller does not follow. ended may be nil (follow
// until ctx ends).
func FollowFiles(ctx context.Context, paths []string, w io.Writer, opts LogOptions, ended func() bool) error {
	var uniq []string
	for _, p := range paths {
		if p != "" && !slices.Contains(uniq, p) {
			uniq = append(uniq, p)
		}
	}
	offs := make([]int64, len(uniq))
	found := false
	for i, path := range uniq {
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			continue
		case err != nil:
			return fmt.Errorf("logs: %w", err)
		}
		found = true
		out := b
		if opts.Lines >= 0 {
			out = lastLines(b, opts.Lines)
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
		offs[i] = int64(len(b))
	}
	if !opts.Follow {
		if !found {
			return fmt.Errorf("logs: no log at %v", uniq)
		}
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 64<<10)
	for {
		// The verdict is read before draining, so what the service wrote
		// before it ended is always printed.
		done := ended != nil && ended()
		for i, path := range uniq {
			n, err := appended(path, offs[i], buf, w)
			if err != nil {
				return err
			}
			offs[i] = n
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// appended writes what path gained past off and returns the new offset; a
// file shorter than off was truncated or replaced and is read from the start.
func appended(path string, off int64, buf []byte, w io.Writer) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return off, nil // not there (yet): nothing new
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < off {
		off = 0
	}
	for {
		n, err := f.ReadAt(buf, off)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return off, werr
			}
			off += int64(n)
		}
		if err != nil {
			return off, nil
		}
	}
}

// lastLines is the tail of b holding its last n lines.
func lastLines(b []byte, n int) []byte {
	if n == 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(b[:end], '\n')
		if j < 0 {
			return b
		}
		end = j
	}
	return b[end+1:]
}
