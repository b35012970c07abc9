package cycles

import (
	"os"
	"slices"
	"sync"
	"time"

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

// NewSurveyCache watches the status dir of stateDir (which the first grow
// creates: the state dir is watched for it). Where inotify is unavailable it
// caches nothing.
func NewSurveyCache(stateDir string, maxAge time.Duration) *SurveyCache {
	c := &SurveyCache{MaxAge: maxAge, status: contract.Layout{StateDir: stateDir}.StatusDir(), statusWd: -1}
	c.watch(stateDir)
	return c
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
