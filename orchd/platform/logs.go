package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/logline"
)

// LogSource is one file a service's output goes to.
type LogSource struct {
	Path string
	// Records: orchd's own service log, logline records with a time and a
	// stream per line. Otherwise the file holds the output as the service
	// wrote it (a STDOUT/STDERR path of the Orchfile, or a platform that
	// appends raw output), so no line has a time.
	Records bool
}

// NeedsTimes reports whether opts ask for per-line times (-t, --since),
// which only record sources have.
func (o LogOptions) NeedsTimes() bool { return o.Timestamps || !o.Since.IsZero() }

// FollowFiles writes raw log files per opts: each of paths (duplicates read
// once) with ReadLogs, following until ended (nil: ctx) reports the service
// will write no more. A missing path is an error only when none exists and
// the caller does not follow. -t and --since are refused: the files have no
// per-line times.
func FollowFiles(ctx context.Context, paths []string, w io.Writer, opts LogOptions, ended func() bool) error {
	var srcs []LogSource
	found := false
	for _, p := range paths {
		if p == "" || slices.ContainsFunc(srcs, func(s LogSource) bool { return s.Path == p }) {
			continue
		}
		srcs = append(srcs, LogSource{Path: p})
		if _, err := os.Stat(p); err == nil {
			found = true
		}
	}
	if opts.NeedsTimes() {
		return fmt.Errorf("logs: -t and --since need per-line times; this platform appends the service's raw output to %s, which has none (drop -t/--since, or use the orchdi platform)", strings.Join(paths, ", "))
	}
	if !found && !opts.Follow {
		return fmt.Errorf("logs: no log at %v", paths)
	}
	return ReadLogs(ctx, srcs, w, opts, ended)
}

// ReadLogs writes the lines of srcs to w, one source after the other: the
// last opts.Lines lines of each (all when negative), only those read at or
// after opts.Since, each after its time with opts.Timestamps. With
// opts.Follow it then writes lines as they are appended until ctx ends or
// ended (nil: never) reports true; ended is asked before each last read, so
// what was written before the end is always printed. A source missing is
// empty (not written yet). Partial lines (no newline yet) are printed when
// reading stops.
func ReadLogs(ctx context.Context, srcs []LogSource, w io.Writer, opts LogOptions, ended func() bool) error {
	out := lineWriter{w: w, opts: opts}
	readers := make([]*sourceReader, len(srcs))
	for i, s := range srcs {
		r := &sourceReader{src: s}
		readers[i] = r
		if err := r.start(opts.Lines); err != nil {
			return err
		}
		// The last N lines are those of a read from a little earlier, held
		// and cut: a line of records may begin before the N-th line end
		// from the file's end (its stream's partial records interleave with
		// the other stream's lines).
		out.hold = opts.Lines >= 0
		err := r.read(&out)
		n := opts.Lines
		if err == nil && !opts.Follow {
			err = r.flush(&out)
		} else if n > 0 {
			// Lines still partial are printed when they end: they count.
			n = max(0, n-r.pending())
		}
		if err == nil {
			err = out.release(n)
		}
		if err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	flush := func() error {
		for _, r := range readers {
			if err := r.flush(&out); err != nil {
				return err
			}
		}
		return nil
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done := ended != nil && ended()
		for _, r := range readers {
			if err := r.read(&out); err != nil {
				return err
			}
		}
		if done {
			return flush()
		}
		select {
		case <-ctx.Done():
			return flush()
		case <-tick.C:
		}
	}
}

// lineWriter prints lines per LogOptions.
type lineWriter struct {
	w    io.Writer
	opts LogOptions
	buf  []byte
	// hold keeps lines in held instead of printing them (release prints).
	hold bool
	held []logline.Line
}

func (lw *lineWriter) line(l logline.Line) error {
	if !lw.opts.Since.IsZero() && l.Time.Before(lw.opts.Since) {
		return nil
	}
	if lw.hold {
		l.Text = append([]byte(nil), l.Text...)
		lw.held = append(lw.held, l)
		return nil
	}
	b := lw.buf[:0]
	if lw.opts.Timestamps && !l.Time.IsZero() {
		b = l.Time.UTC().AppendFormat(b, logline.TimeLayout)
		b = append(b, ' ')
	}
	b = append(b, l.Text...)
	b = append(b, '\n')
	lw.buf = b
	_, err := lw.w.Write(b)
	return err
}

// release prints the last n held lines (all when negative) and stops holding.
func (lw *lineWriter) release(n int) error {
	held := lw.held
	if n >= 0 && len(held) > n {
		held = held[len(held)-n:]
	}
	lw.hold, lw.held = false, nil
	for _, l := range held {
		if err := lw.line(l); err != nil {
			return err
		}
	}
	return nil
}

// tailLookback is how many line ends before the last N a tail starts
// reading, so a line whose partial records began earlier is read whole.
const tailLookback = 16

// sourceReader reads one source incrementally.
type sourceReader struct {
	src   LogSource
	off   int64  // read up to here
	carry []byte // a physical line not ended yet
	asm   logline.Assembler
}

// start places the reader at the last n lines (all when negative).
func (r *sourceReader) start(n int) error {
	if n < 0 {
		return nil
	}
	f, err := os.Open(r.src.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	defer f.Close()
	var ends func([]byte) bool
	if r.src.Records {
		ends = logline.EndsLine
	}
	if n > 0 {
		n += tailLookback
	}
	if r.off, err = TailOffset(f, n, ends); err != nil {
		return fmt.Errorf("logs: %s: %w", r.src.Path, err)
	}
	return nil
}

// read prints the lines appended since the last read.
func (r *sourceReader) read(out *lineWriter) error {
	f, err := os.Open(r.src.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < r.off {
		// Truncated or replaced: start over.
		r.off, r.carry, r.asm = 0, nil, logline.Assembler{}
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := f.ReadAt(buf, r.off)
		r.off += int64(n)
		data := buf[:n]
		for len(data) > 0 {
			i := bytes.IndexByte(data, '\n')
			if i < 0 {
				r.carry = append(r.carry, data...)
				break
			}
			phys := data[:i]
			if len(r.carry) > 0 {
				phys = append(r.carry, phys...)
				r.carry = r.carry[:0]
			}
			if err := r.physical(phys, out); err != nil {
				return err
			}
			data = data[i+1:]
		}
		if errors.Is(err, io.EOF) || n == 0 {
			return nil
		}
		if err != nil {
			return fmt.Errorf("logs: %s: %w", r.src.Path, err)
		}
	}
}

func (r *sourceReader) physical(phys []byte, out *lineWriter) error {
	if !r.src.Records {
		return out.line(logline.Line{Text: phys})
	}
	if l, ok := r.asm.Add(phys); ok {
		return out.line(l)
	}
	return nil
}

// pending is how many lines were begun but not ended yet.
func (r *sourceReader) pending() int {
	n := r.asm.Pending()
	if len(r.carry) > 0 && !r.src.Records {
		n++
	}
	return n
}

// flush prints what is pending: a last line without a newline.
func (r *sourceReader) flush(out *lineWriter) error {
	if len(r.carry) > 0 {
		if err := r.physical(r.carry, out); err != nil {
			return err
		}
		r.carry = nil
	}
	for _, l := range r.asm.Flush() {
		if err := out.line(l); err != nil {
			return err
		}
	}
	return nil
}

// TailOffset finds where the last n lines of f start, reading backwards in
// blocks so a large log is not read whole. endsLine (nil: every line does)
// says whether a physical line ends a line of output, given its first bytes;
// a log of records counts a line split into partial records once, and a last
// partial line counts as a line.
func TailOffset(f *os.File, n int, endsLine func(prefix []byte) bool) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	end := fi.Size()
	if end == 0 || n < 0 {
		return 0, nil
	}
	if n == 0 {
		return end, nil
	}
	prefix := make([]byte, 64)
	ends := func(start int64) (bool, error) {
		if endsLine == nil {
			return true, nil
		}
		k, err := f.ReadAt(prefix, start)
		if err != nil && !errors.Is(err, io.EOF) {
			return false, err
		}
		line := prefix[:k]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
		}
		return endsLine(line), nil
	}
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, end-1); err != nil {
		return 0, err
	}
	// A final newline ends the last line; it does not start another.
	scanEnd := end
	if last[0] == '\n' {
		scanEnd--
	}
	seen := 0
	next := end // the start of the physical line after the one judged
	// judge counts the physical line at start; it returns true when that
	// line is the (n+1)th from the end, so the tail starts at next.
	judge := func(start int64) (bool, error) {
		e, err := ends(start)
		if err != nil {
			return false, err
		}
		if e || next == end {
			// The last physical line counts even when partial.
			seen++
		}
		if seen == n+1 {
			return true, nil
		}
		next = start
		return false, nil
	}
	const block = 32 * 1024
	buf := make([]byte, block)
	pos := scanEnd
	for pos > 0 {
		size := min(int64(block), pos)
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := size - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			stop, err := judge(pos + i + 1)
			if err != nil {
				return 0, err
			}
			if stop {
				return next, nil
			}
		}
	}
	stop, err := judge(0)
	if err != nil {
		return 0, err
	}
	if stop {
		return next, nil
	}
	return 0, nil
}
