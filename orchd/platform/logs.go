package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// FollowFile writes path (its last opts.Lines lines when set) to w and, with
// opts.Follow, what is appended to it until ctx ends.
func FollowFile(ctx context.Context, path string, w io.Writer, opts LogOptions) error {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && opts.Follow:
	case err != nil:
		return fmt.Errorf("logs: %w", err)
	}
	out := b
	if opts.Lines >= 0 {
		out = lastLines(b, opts.Lines)
	}
	if _, err := w.Write(out); err != nil {
		return err
	}
	if !opts.Follow {
		return nil
	}
	off := int64(len(b))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		if fi, err := f.Stat(); err == nil && fi.Size() < off {
			off = 0 // truncated or replaced: start over
		}
		for {
			n, err := f.ReadAt(buf, off)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					f.Close()
					return werr
				}
				off += int64(n)
			}
			if err != nil {
				break
			}
		}
		f.Close()
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
