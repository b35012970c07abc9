package daemontest

import "github.com/orchd/orchd/internal/syncbuf"

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a daemon's log
// copier, containerd's stdio copiers, a leaf) and a reading test.
type SyncBuffer = syncbuf.Buffer
