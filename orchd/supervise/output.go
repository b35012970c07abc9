package supervise

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/durable"
	"github.com/orchd/orchd/orchd/logline"
)

// output is where one stream of a command goes.
type output struct {
	f *os.File // nil = /dev/null
	// stamp: f is orchd's own service log, written as logline records (time,
	// stream, partial or full line). A STDOUT/STDERR path the Orchfile names
	// gets the bytes exactly as the service wrote them.
	stamp bool
}

// writer is what a command's stream is handed when it is not passed as a
// file: records of stream, or the file itself.
func (o output) writer(stream string) io.Writer {
	if o.stamp {
		return logline.NewWriter(o.f, stream)
	}
	return o.f
}

// outputs are a unit's stdout and stderr.
type outputs struct{ stdout, stderr output }

// recordsValue is the logline.RecordsEnv value for a leaf that writes these
// outputs itself: the streams that are orchd's service log.
func (o outputs) recordsValue() string {
	return logline.RecordsValue(o.stdout.f != nil && o.stdout.stamp, o.stderr.f != nil && o.stderr.stamp)
}

func (o outputs) Close() {
	o.stdout.f.Close()
	if o.stderr.f != o.stdout.f {
		o.stderr.f.Close()
	}
}

// openOutputs opens where u's commands write: its STDOUT and STDERR paths,
// orchd's service log where none is named (or where the path is that log).
func openOutputs(l contract.Layout, u contract.Unit) (outputs, error) {
	def := l.LogFile(u.Label)
	paths := [2]string{u.Stdout, u.Stderr}
	var o outputs
	for i, p := range paths {
		if p == "" {
			paths[i] = def
		}
	}
	var err error
	if o.stdout.f, err = openLog(paths[0]); err != nil {
		return o, fmt.Errorf("stdout %s: %w", paths[0], err)
	}
	o.stderr.f = o.stdout.f
	if paths[1] != paths[0] {
		if o.stderr.f, err = openLog(paths[1]); err != nil {
			o.stdout.f.Close()
			return o, fmt.Errorf("stderr %s: %w", paths[1], err)
		}
	}
	o.stdout.stamp, o.stderr.stamp = paths[0] == def, paths[1] == def
	return o, nil
}

// LogPaths is what `orchd logs` reads for a service whose unit is gone
// (felled): where its STDOUT and STDERR went. Only paths, never ENV.
type LogPaths struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
}

// keepLogPaths records u's STDOUT/STDERR paths beside its log when one is
// not orchd's own log (so they stay readable after fell), and removes a
// stale record otherwise.
func keepLogPaths(l contract.Layout, u contract.Unit) error {
	def := l.LogFile(u.Label)
	path := l.LogPaths(u.Label)
	if (u.Stdout == "" || u.Stdout == def) && (u.Stderr == "" || u.Stderr == def) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("log paths: %w", err)
		}
		return nil
	}
	lp := LogPaths{Stdout: u.Stdout, Stderr: u.Stderr}
	if lp.Stdout == "" {
		lp.Stdout = def
	}
	if lp.Stderr == "" {
		lp.Stderr = def
	}
	b, err := json.Marshal(lp)
	if err != nil {
		return fmt.Errorf("log paths: %w", err)
	}
	return durable.WriteFile(path, append(b, '\n'), 0o600)
}

// ReadLogPaths reads what keepLogPaths recorded for label.
func ReadLogPaths(l contract.Layout, label string) (LogPaths, error) {
	var lp LogPaths
	b, err := os.ReadFile(l.LogPaths(label))
	if err != nil {
		return lp, err
	}
	if err := json.Unmarshal(b, &lp); err != nil {
		return lp, fmt.Errorf("read %s: %w", l.LogPaths(label), err)
	}
	return lp, nil
}
