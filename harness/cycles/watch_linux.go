package cycles

import (
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_MODIFY |
	unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_ATTRIB

// watch starts the inotify watch of stateDir and, once it exists, its
// status dir.
func (c *SurveyCache) watch(stateDir string) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "inotify")
	stateWd, err := unix.InotifyAddWatch(fd, stateDir, unix.IN_CREATE|unix.IN_MOVED_TO)
	if err != nil {
		f.Close()
		return
	}
	c.f, c.fd = f, fd
	c.watchStatus()
	go c.read(f, stateWd)
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
