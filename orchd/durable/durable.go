// Package durable writes the files orchd's state lives in (status files,
// units, leaf spec files, pidfiles, ready markers) so that a reader sees the
// old content or the new, never a torn or empty file, and so that once a
// write returns it survives a crash or power loss: the data is fsynced in a
// temp file beside the target, renamed over it, and the directory holding
// the name is fsynced too (a rename lives in the directory, not the file).
package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// writers bounds the files WriteFiles writes at once.
const writers = 16

// File is one file to write.
type File struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// WriteFile writes one file durably. Missing parent dirs are created 0700.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return WriteFiles([]File{{Path: path, Data: data, Mode: mode}})
}

// WriteFiles writes each file durably, syncing each directory once after all
// its files are in place: writing many files into one directory (tend writes
// every unit and spec file into run/) costs one directory sync, not one per
// file. When it returns nil, every file is on disk under its name.
//
// The files are written concurrently (at most writers at once): their fsyncs
// then share the file system's journal commits instead of queueing one
// behind another, which for tend's 2N files is most of grow's own time.
func WriteFiles(files []File) error {
	var dirs []string
	seen := map[string]bool{}
	for _, f := range files {
		if d := filepath.Dir(f.Path); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
			// Parents first, once, so the concurrent writers do not race to create them.
			if err := os.MkdirAll(d, 0o700); err != nil {
				return fmt.Errorf("create %s: %w", d, err)
			}
		}
	}
	last := map[string]int{} // a path given twice gets its last content, as when written in order
	for i, f := range files {
		last[f.Path] = i
	}
	errs := make([]error, len(files))
	sem := make(chan struct{}, writers)
	var wg sync.WaitGroup
	for i, f := range files {
		if last[f.Path] != i {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = replace(f)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := SyncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// Replace writes one file atomically but not durably: a reader sees the old
// content or the new, never a torn file, but nothing is synced, so after a
// crash or power loss the file may hold older content, or none. It is for
// state a crash makes stale anyway (the status of a live supervisor, which a
// crash ends), rewritten often on the start path: each durable write costs
// two journal commits that concurrent starts, and containerd's own metadata
// commits on the same disk, queue behind.
func Replace(path string, data []byte, mode os.FileMode) error {
	return replaceWith(File{Path: path, Data: data, Mode: mode}, false)
}

// replace writes f through a synced temp file renamed over f.Path.
func replace(f File) error { return replaceWith(f, true) }

// replaceWith writes f through a temp file renamed over f.Path, synced
// before the rename when sync is set.
func replaceWith(f File, sync bool) error {
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tf, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	tmp := tf.Name()
	err = fill(tf, f, sync)
	if cerr := tf.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, f.Path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}

func fill(tf *os.File, f File, sync bool) error {
	mode := f.Mode
	if mode == 0 {
		mode = 0o600
	}
	if err := tf.Chmod(mode); err != nil {
		return err
	}
	if _, err := tf.Write(f.Data); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	return tf.Sync()
}

// SyncDir fsyncs a directory, making the names created, renamed or removed
// in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some filesystems cannot sync a directory; the rename is still atomic.
	if err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
