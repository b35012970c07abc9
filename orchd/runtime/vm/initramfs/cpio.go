// Package initramfs builds the initial RAM filesystem a vm service boots from:
// image layers flattened (whiteouts honored) into one tree, written as a newc
// cpio archive, the format the Linux kernel unpacks into its rootfs.
package initramfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// File type bits of a cpio (and stat) mode.
const (
	ModeType = 0o170000
	ModeDir  = 0o040000
	ModeReg  = 0o100000
	ModeLink = 0o120000
	ModeChr  = 0o020000
	ModeBlk  = 0o060000
	ModeFifo = 0o010000
	ModeSock = 0o140000
)

const (
	newcMagic  = "070701"
	headerLen  = 110
	trailerStr = "TRAILER!!!"
)

// Header is one newc cpio entry.
type Header struct {
	Name     string
	Ino      uint32
	Mode     uint32 // type bits | permission bits
	UID, GID uint32
	Nlink    uint32
	Mtime    uint32
	Size     int64
	DevMajor uint32
	DevMinor uint32
	// RDev* are the device numbers of a character or block device entry.
	RDevMajor, RDevMinor uint32
}

// Writer writes a newc archive. Call Close to write the trailer.
type Writer struct {
	w       *bufio.Writer
	off     int64
	remain  int64
	pad     int
	nextIno uint32
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 1<<20), nextIno: 1} }

func (cw *Writer) write(p []byte) error {
	n, err := cw.w.Write(p)
	cw.off += int64(n)
	return err
}

func (cw *Writer) align() error {
	if r := cw.off % 4; r != 0 {
		return cw.write(make([]byte, 4-r))
	}
	return nil
}

// WriteHeader starts an entry; its data (h.Size bytes) follows with Write.
// A zero Ino is assigned a fresh inode number; a zero Nlink becomes 1 (2 for dirs).
func (cw *Writer) WriteHeader(h Header) error {
	if cw.remain != 0 {
		return fmt.Errorf("cpio: %d bytes of the previous entry missing", cw.remain)
	}
	if err := cw.align(); err != nil {
		return err
	}
	if h.Ino == 0 {
		h.Ino = cw.nextIno
		cw.nextIno++
	}
	if h.Nlink == 0 {
		h.Nlink = 1
		if h.Mode&ModeType == ModeDir {
			h.Nlink = 2
		}
	}
	if h.Size > 0xffffffff {
		return fmt.Errorf("cpio: %s is larger than 4 GiB", h.Name)
	}
	hdr := make([]byte, 0, headerLen+len(h.Name)+1)
	hdr = append(hdr, newcMagic...)
	for _, v := range []uint32{h.Ino, h.Mode, h.UID, h.GID, h.Nlink, h.Mtime, uint32(h.Size), h.DevMajor, h.DevMinor, h.RDevMajor, h.RDevMinor, uint32(len(h.Name) + 1), 0} {
		hdr = fmt.Appendf(hdr, "%08x", v)
	}
	hdr = append(hdr, h.Name...)
	hdr = append(hdr, 0)
	if err := cw.write(hdr); err != nil {
		return err
	}
	if err := cw.align(); err != nil {
		return err
	}
	cw.remain = h.Size
	return nil
}

// Write writes entry data.
func (cw *Writer) Write(p []byte) (int, error) {
	if int64(len(p)) > cw.remain {
		return 0, errors.New("cpio: write beyond entry size")
	}
	n, err := cw.w.Write(p)
	cw.off += int64(n)
	cw.remain -= int64(n)
	return n, err
}

// Close writes the trailer and flushes.
func (cw *Writer) Close() error {
	if err := cw.WriteHeader(Header{Name: trailerStr, Ino: 0xffffffff, Nlink: 1}); err != nil {
		return err
	}
	if err := cw.align(); err != nil {
		return err
	}
	return cw.w.Flush()
}

// Reader reads a newc archive (used to verify what Writer produced).
type Reader struct {
	r      *bufio.Reader
	off    int64
	remain int64
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReader(r)} }

func (cr *Reader) skip(n int64) error {
	m, err := io.CopyN(io.Discard, cr.r, n)
	cr.off += m
	return err
}

func (cr *Reader) alignSkip() error {
	if r := cr.off % 4; r != 0 {
		return cr.skip(4 - r)
	}
	return nil
}

// Next advances to the next entry; io.EOF after the trailer.
func (cr *Reader) Next() (*Header, error) {
	if err := cr.skip(cr.remain); err != nil {
		return nil, err
	}
	cr.remain = 0
	if err := cr.alignSkip(); err != nil {
		return nil, err
	}
	buf := make([]byte, headerLen)
	if _, err := io.ReadFull(cr.r, buf); err != nil {
		return nil, fmt.Errorf("cpio header: %w", err)
	}
	cr.off += headerLen
	if string(buf[:6]) != newcMagic {
		return nil, fmt.Errorf("cpio: bad magic %q at offset %d", buf[:6], cr.off-headerLen)
	}
	var f [13]uint32
	for i := range f {
		v, err := strconv.ParseUint(string(buf[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			return nil, fmt.Errorf("cpio: bad header field %d: %w", i, err)
		}
		f[i] = uint32(v)
	}
	name := make([]byte, f[11])
	if _, err := io.ReadFull(cr.r, name); err != nil {
		return nil, fmt.Errorf("cpio name: %w", err)
	}
	cr.off += int64(len(name))
	if err := cr.alignSkip(); err != nil {
		return nil, err
	}
	h := &Header{Name: string(name[:len(name)-1]), Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], Nlink: f[4], Mtime: f[5], Size: int64(f[6]), DevMajor: f[7], DevMinor: f[8], RDevMajor: f[9], RDevMinor: f[10]}
	if h.Name == trailerStr {
		return nil, io.EOF
	}
	cr.remain = h.Size
	return h, nil
}

// Read reads the current entry's data.
func (cr *Reader) Read(p []byte) (int, error) {
	if cr.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > cr.remain {
		p = p[:cr.remain]
	}
	n, err := cr.r.Read(p)
	cr.off += int64(n)
	cr.remain -= int64(n)
	return n, err
}
