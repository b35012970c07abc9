package cycles

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
)

// SurveyCache answers `orchd survey` from its last run while no status file
// of the state dir changed and the answer is younger than MaxAge.
//
// Waiting on orchd means polling survey, and a survey is an exec of orchd
// plus a containerd round trip per container service: a few milliseconds on
// a host, about a second of a vCPU in a VM under TCG, where surveys polled
// back to back took a large share of the guest's CPU from the services they
// waited for. Every state a supervisor reaches is written to its status file,
// so while no status file changed (inotify) a new survey would say the same,
// except for what no status file holds: a task's status as containerd reports
// it, a supervisor killed without a word, the uptime. MaxAge bounds how stale
// those may be. Any other orchd command run through the CLI drops the answer.
type SurveyCache struct {
	// MaxAge is the longest a cached answer is used.
	MaxAge time.Duration

	status string

	mu       sync.Mutex
	f        *os.File // the inotify fd; nil when nothing is watched
	fd       int      // f's fd (f.Fd would make it blocking)
	statusWd int      // -1 until the status dir is watched
	gen      uint64   // bumped on every change
	rows     []platform.ServiceStatus
	rowsGen  uint64
	rowsAt   time.Time
	hits     int
}

const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_MODIFY |
	unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_ATTRIB

// NewSurveyCache watches the status dir of stateDir (which the first grow
// creates: the state dir is watched for it). Where inotify is unavailable it
// caches nothing.
func NewSurveyCache(stateDir string, maxAge time.Duration) *SurveyCache {
	c := &SurveyCache{MaxAge: maxAge, status: contract.Layout{StateDir: stateDir}.StatusDir(), statusWd: -1}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return c
	}
	f := os.NewFile(uintptr(fd), "inotify")
	stateWd, err := unix.InotifyAddWatch(fd, stateDir, unix.IN_CREATE|unix.IN_MOVED_TO)
	if err != nil {
		f.Close()
		return c
	}
	c.f, c.fd = f, fd
	c.watchStatus()
	go c.read(f, stateWd)
	return c
}

// watchStatus watches the status dir once it exists. Whatever changed in it
// before the watch was added is unknown, so it counts as a change.
func (c *SurveyCache) watchStatus() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil || c.statusWd >= 0 {
		return
	}
	if wd, err := unix.InotifyAddWatch(c.fd, c.status, watchMask); err == nil {
		c.statusWd = wd
		c.gen++
	}
}

func (c *SurveyCache) read(f *os.File, stateWd int) {
	buf := make([]byte, 16*1024)
	for {
		n, err := f.Read(buf)
		if err != nil {
			return // closed
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := unix.ByteSliceToString(buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)])
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if int(ev.Wd) == stateWd {
				if name == filepath.Base(c.status) {
					c.watchStatus()
				}
				continue
			}
			c.Invalidate()
		}
	}
}

// Invalidate drops the cached answer.
func (c *SurveyCache) Invalidate() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
}

// get returns the cached answer when it is still the truth, and the
// generation a new survey is taken at.
func (c *SurveyCache) get() ([]platform.ServiceStatus, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f != nil && c.statusWd >= 0 && c.rows != nil && c.rowsGen == c.gen && time.Since(c.rowsAt) < c.MaxAge {
		c.hits++
		return slices.Clone(c.rows), true, c.gen
	}
	return nil, false, c.gen
}

// put keeps rows, surveyed at generation gen (a change during the survey
// leaves them stale at once).
func (c *SurveyCache) put(rows []platform.ServiceStatus, gen uint64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows, c.rowsGen, c.rowsAt = slices.Clone(rows), gen, at
	if c.rows == nil {
		c.rows = []platform.ServiceStatus{}
	}
}

// Hits is how many surveys the cache answered.
func (c *SurveyCache) Hits() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}

// Close stops watching; the cache answers nothing after it.
func (c *SurveyCache) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.f == nil {
		return nil
	}
	err := c.f.Close()
	c.f = nil
	return err
}
