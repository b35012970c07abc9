package initramfs

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// OCI whiteout names (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Entry is one file of the flattened tree. Regular file content lives in the
// tree's spill file at [off, off+Size), so large images need no RAM here.
type Entry struct {
	Path                 string // clean, relative, no leading slash
	Mode                 uint32 // cpio type bits | permissions
	UID, GID             uint32
	Mtime                int64
	Size                 int64
	Link                 string // symlink target
	RDevMajor, RDevMinor uint32

	off   int64
	layer int
}

// Tree is a filesystem tree built by applying layers in order.
type Tree struct {
	entries map[string]*Entry
	spill   *os.File
	end     int64
	layer   int
}

// NewTree returns an empty tree whose file contents are spilled to spill
// (an empty, read-write file the caller removes).
func NewTree(spill *os.File) *Tree {
	return &Tree{entries: map[string]*Entry{}, spill: spill}
}

// Clean turns an archive path into the tree's key ("" is the root).
func Clean(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

func (t *Tree) store(r io.Reader, size int64) (int64, error) {
	off := t.end
	n, err := io.Copy(io.NewOffsetWriter(t.spill, off), io.LimitReader(r, size))
	if err != nil {
		return 0, fmt.Errorf("spill: %w", err)
	}
	if n != size {
		return 0, fmt.Errorf("spill: short content (%d of %d bytes)", n, size)
	}
	t.end += n
	return off, nil
}

// removeLower deletes p (when self) and everything under it that came from a
// layer below the current one.
func (t *Tree) removeLower(p string, self bool) {
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for k, e := range t.entries {
		if e.layer >= t.layer {
			continue
		}
		if (self && k == p) || (k != p && strings.HasPrefix(k, prefix)) {
			delete(t.entries, k)
		}
	}
}

// ApplyLayer applies one uncompressed tar layer on top of the tree.
func (t *Tree) ApplyLayer(r io.Reader) error {
	t.layer++
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %d: %w", t.layer, err)
		}
		p := Clean(h.Name)
		if p == "" {
			continue
		}
		dir, base := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if base == whiteoutOpaque {
			t.removeLower(dir, false)
			continue
		}
		if strings.HasPrefix(base, whiteoutPrefix) {
			t.removeLower(path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix)), true)
			continue
		}
		e := &Entry{Path: p, Mode: uint32(h.Mode) & 0o7777, UID: uint32(h.Uid), GID: uint32(h.Gid), Mtime: h.ModTime.Unix(), layer: t.layer}
		switch h.Typeflag {
		case tar.TypeDir:
			e.Mode |= ModeDir
		case tar.TypeReg, tar.TypeRegA:
			e.Mode |= ModeReg
			e.Size = h.Size
			if e.off, err = t.store(tr, h.Size); err != nil {
				return fmt.Errorf("layer %d: %s: %w", t.layer, p, err)
			}
		case tar.TypeSymlink:
			e.Mode |= ModeLink
			e.Link = h.Linkname
		case tar.TypeLink:
			target, ok := t.entries[Clean(h.Linkname)]
			if !ok {
				return fmt.Errorf("layer %d: hard link %s -> %s: target missing", t.layer, p, h.Linkname)
			}
			// Copy the target's content reference: the cpio gets a separate inode with the same bytes.
			c := *target
			c.Path, c.layer = p, t.layer
			e = &c
		case tar.TypeChar:
			e.Mode |= ModeChr
			e.RDevMajor, e.RDevMinor = uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeBlock:
			e.Mode |= ModeBlk
			e.RDevMajor, e.RDevMinor = uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeFifo:
			e.Mode |= ModeFifo
		default:
			continue // pax/global headers and other metadata-only entries
		}
		if old, ok := t.entries[p]; ok && old.Mode&ModeType == ModeDir && e.Mode&ModeType != ModeDir {
			t.removeLower(p, true)
		}
		t.entries[p] = e
	}
}

// AddFile adds (or replaces) a regular file with content from r.
func (t *Tree) AddFile(p string, mode uint32, r io.Reader, size int64) error {
	p = Clean(p)
	off, err := t.store(r, size)
	if err != nil {
		return fmt.Errorf("add %s: %w", p, err)
	}
	t.entries[p] = &Entry{Path: p, Mode: ModeReg | mode&0o7777, Size: size, off: off, layer: t.layer}
	return nil
}

// AddBytes adds a regular file with the given content.
func (t *Tree) AddBytes(p string, mode uint32, b []byte) error {
	return t.AddFile(p, mode, strings.NewReader(string(b)), int64(len(b)))
}

// AddDir adds a directory (mode is the permission bits).
func (t *Tree) AddDir(p string, mode uint32) {
	p = Clean(p)
	if e, ok := t.entries[p]; ok && e.Mode&ModeType == ModeDir {
		return
	}
	t.entries[p] = &Entry{Path: p, Mode: ModeDir | mode&0o7777, layer: t.layer}
}

// Lookup returns the entry at p.
func (t *Tree) Lookup(p string) (*Entry, bool) {
	e, ok := t.entries[Clean(p)]
	return e, ok
}

// Open returns a reader of a regular file's content.
func (t *Tree) Open(e *Entry) io.Reader { return io.NewSectionReader(t.spill, e.off, e.Size) }

// Paths returns every path, sorted.
func (t *Tree) Paths() []string {
	out := make([]string, 0, len(t.entries))
	for k := range t.entries {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// WriteCPIO writes the tree as a newc archive: parents before children, and any
// directory a layer implied but never listed created 0755.
func (t *Tree) WriteCPIO(w io.Writer) error {
	for _, p := range t.Paths() {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := t.entries[d]; !ok {
				t.AddDir(d, 0o755)
			}
		}
	}
	cw := NewWriter(w)
	for _, p := range t.Paths() {
		e := t.entries[p]
		h := Header{Name: p, Mode: e.Mode, UID: e.UID, GID: e.GID, Mtime: uint32(max(e.Mtime, 0)), RDevMajor: e.RDevMajor, RDevMinor: e.RDevMinor}
		var body io.Reader
		switch e.Mode & ModeType {
		case ModeReg:
			h.Size = e.Size
			body = t.Open(e)
		case ModeLink:
			h.Size = int64(len(e.Link))
			body = strings.NewReader(e.Link)
		}
		if err := cw.WriteHeader(h); err != nil {
			return fmt.Errorf("cpio %s: %w", p, err)
		}
		if body != nil {
			if _, err := io.Copy(cw, body); err != nil {
				return fmt.Errorf("cpio %s: %w", p, err)
			}
		}
	}
	return cw.Close()
}

// AddNode adds a character or block device node (mode = type bits | permissions).
func (t *Tree) AddNode(p string, mode uint32, major, minor uint32) {
	p = Clean(p)
	t.entries[p] = &Entry{Path: p, Mode: mode, RDevMajor: major, RDevMinor: minor, layer: t.layer}
}
