// Package logline is the format of orchd's own service logs: every chunk a
// service writes becomes records, one a line, each stamped with the time it
// was read and the stream it came from, in the layout containerd's CRI logs
// use:
//
//	<time> <stream> <F|P> <text>
//
// time is RFC 3339 with nanoseconds (UTC, fixed width), stream is stdout or
// stderr, F ends a line and P is a partial one that the stream's next record
// continues (a write without a newline, or a line longer than one read). So
// output is written as soon as it is read (nothing waits in memory for a
// newline), both streams share one file yet stay apart, and a reader can
// show times and filter on them. It imports only the standard library: the
// writer runs in every host command's init and in every containerd leaf.
package logline

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"time"
)

// Streams.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// TimeLayout is the records' time: RFC 3339 with a fixed nine-digit
// fraction, so records of one file sort as text.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

const (
	tagFull    = 'F'
	tagPartial = 'P'
)

// Writer encodes what is written to it as records of one stream and writes
// them to the underlying writer in one call per Write, so records of two
// Writers sharing an O_APPEND file never interleave mid-record. It is safe
// for concurrent use (a leaf's task output and its own messages share one).
type Writer struct {
	mu     sync.Mutex
	w      io.Writer
	stream string
	now    func() time.Time
	buf    []byte
}

// Option configures a Writer.
type Option func(*Writer)

// WithClock sets the clock records are stamped with (tests).
func WithClock(now func() time.Time) Option { return func(w *Writer) { w.now = now } }

// NewWriter returns a Writer of stream (Stdout or Stderr) onto w.
func NewWriter(w io.Writer, stream string, opts ...Option) *Writer {
	lw := &Writer{w: w, stream: stream, now: time.Now}
	for _, o := range opts {
		o(lw)
	}
	return lw
}

// Write stamps p with the current time: each line of p is an F record, a
// trailing piece without a newline a P record.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ts := w.now().UTC().Format(TimeLayout)
	b := w.buf[:0]
	for len(p) > 0 {
		tag := byte(tagPartial)
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			tag, line, p = tagFull, p[:i], p[i+1:]
		} else {
			p = nil
		}
		b = append(b, ts...)
		b = append(b, ' ')
		b = append(b, w.stream...)
		b = append(b, ' ', tag, ' ')
		b = append(b, line...)
		b = append(b, '\n')
	}
	w.buf = b
	if _, err := w.w.Write(b); err != nil {
		return 0, err
	}
	return n, nil
}

// RecordsEnv names the environment variable through which a process gets
// its stdout and stderr as files while being told which of them are orchd's
// service log, to be written as records ("stdout", "stderr" or both,
// comma-separated): a containerd leaf's supervisor runs no relay for it.
const RecordsEnv = "ORCHD_LOG_RECORDS"

// RecordsValue is RecordsEnv's value for the streams that are the log.
func RecordsValue(stdout, stderr bool) string {
	var s []string
	if stdout {
		s = append(s, Stdout)
	}
	if stderr {
		s = append(s, Stderr)
	}
	return strings.Join(s, ",")
}

// Streams wraps stdout and stderr in Writers for the streams a RecordsEnv
// value names; the others are returned as they are.
func Streams(value string, stdout, stderr io.Writer) (io.Writer, io.Writer) {
	for _, s := range strings.Split(value, ",") {
		switch strings.TrimSpace(s) {
		case Stdout:
			stdout = NewWriter(stdout, Stdout)
		case Stderr:
			stderr = NewWriter(stderr, Stderr)
		}
	}
	return stdout, stderr
}

// Relay copies src to w until src ends (EOF or an error), writing each read
// at once. Reads are at most 32 KiB, so a longer line becomes P records.
func Relay(w *Writer, src io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				// Keep draining: a writer that blocks on a full pipe would
				// stall the service over a log it cannot write.
				io.Copy(io.Discard, src)
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Record is one parsed record.
type Record struct {
	Time    time.Time
	Stream  string
	Partial bool
	Text    []byte // without the newline
}

// Parse reads one record from a line without its newline; ok is false for a
// line that is not one (raw output, a log written before records).
func Parse(line []byte) (r Record, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return r, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(line[:sp]))
	if err != nil {
		return r, false
	}
	rest := line[sp+1:]
	switch {
	case bytes.HasPrefix(rest, []byte(Stdout+" ")):
		r.Stream = Stdout
	case bytes.HasPrefix(rest, []byte(Stderr+" ")):
		r.Stream = Stderr
	default:
		return r, false
	}
	rest = rest[len(r.Stream)+1:]
	if len(rest) < 2 || rest[1] != ' ' || (rest[0] != tagFull && rest[0] != tagPartial) {
		return r, false
	}
	r.Time, r.Partial, r.Text = t, rest[0] == tagPartial, rest[2:]
	return r, true
}

// Line is one line of output as the service wrote it.
type Line struct {
	Time   time.Time // when its first piece was read; zero for a raw line
	Stream string    // Stdout, Stderr, or "" for a raw line
	Text   []byte    // without the newline
	// Partial: the service wrote no newline after it (yet).
	Partial bool
}

// Assembler joins records into lines, per stream.
type Assembler struct {
	pending map[string]*Line
}

// Add feeds one physical line of a log (without its newline) and returns the
// line it completes, if any. A line that is not a record is a raw line.
func (a *Assembler) Add(physical []byte) (Line, bool) {
	r, ok := Parse(physical)
	if !ok {
		return Line{Text: append([]byte(nil), physical...)}, true
	}
	if a.pending == nil {
		a.pending = map[string]*Line{}
	}
	l := a.pending[r.Stream]
	if l == nil {
		l = &Line{Time: r.Time, Stream: r.Stream}
	}
	l.Text = append(l.Text, r.Text...)
	if r.Partial {
		a.pending[r.Stream] = l
		return Line{}, false
	}
	delete(a.pending, r.Stream)
	return *l, true
}

// Pending is how many streams have a line begun and not ended.
func (a *Assembler) Pending() int { return len(a.pending) }

// Flush returns the partial lines still pending (stdout first) and forgets
// them: the end of what there is to read.
func (a *Assembler) Flush() []Line {
	var out []Line
	for _, s := range []string{Stdout, Stderr} {
		if l := a.pending[s]; l != nil {
			l.Partial = true
			out = append(out, *l)
			delete(a.pending, s)
		}
	}
	return out
}

// EndsLine reports whether a physical line ends a line of output: an F
// record or a raw line (not a P record).
func EndsLine(physical []byte) bool {
	r, ok := Parse(physical)
	return !ok || !r.Partial
}
