package supervise

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/orchd/orchd/orchd/logline"
)

// relays are an init's log pipes: for each stamped stream the child writes
// into a pipe and a goroutine writes what it reads as logline records.
type relays struct {
	files  []*os.File // the child's stdin, stdout and stderr
	stderr io.Writer  // where the init's own messages go
	ends   []*os.File // the pipes' write ends, closed once the child has them
	wg     sync.WaitGroup
}

func startRelays(sp initSpec) (*relays, error) {
	r := &relays{files: []*os.File{os.Stdin, os.Stdout, os.Stderr}, stderr: os.Stderr}
	streams := [2]string{logline.Stdout, logline.Stderr}
	for i, on := range [2]bool{sp.StampStdout, sp.StampStderr} {
		if !on {
			continue
		}
		dst := r.files[i+1]
		pr, pw, err := os.Pipe()
		if err != nil {
			r.started()
			return nil, fmt.Errorf("log pipe: %w", err)
		}
		if i == 1 {
			r.stderr = logline.NewWriter(dst, logline.Stderr)
		}
		r.files[i+1] = pw
		r.ends = append(r.ends, pw)
		lw := logline.NewWriter(dst, streams[i])
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer pr.Close()
			logline.Relay(lw, pr)
		}()
	}
	return r, nil
}

// started closes the init's copies of the write ends: from now on the pipes
// end when the last process holding them does.
func (r *relays) started() {
	for _, f := range r.ends {
		f.Close()
	}
	r.ends = nil
}

// drain waits, at most bound, until the relays have written all there was.
func (r *relays) drain(bound time.Duration) {
	r.started()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}
