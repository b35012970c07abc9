package supervise

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The sd_notify protocol, the supervisor's side. A start command that speaks
// it (a containerd-run leaf) finds the socket in $NOTIFY_SOCKET and sends
// newline-separated KEY=VALUE datagrams; the supervisor keeps the service
// `starting` until READY=1. It is the protocol systemd's Type=notify speaks,
// so the same leaves run under systemd unchanged.
const (
	// NotifySocketEnv names the socket in the start command's environment.
	NotifySocketEnv = "NOTIFY_SOCKET"
	// HealthKey carries a HEALTHCHECK verdict run where the service lives
	// (X_ prefix: systemd's convention for fields of one's own).
	HealthKey = "X_ORCHD_HEALTH"
)

// notice is one datagram: its fields and the sender's pid as the kernel
// reports it (0 when unknown).
type notice struct {
	pid    int
	fields map[string]string
}

// ready reports READY=1.
func (n notice) ready() bool { return n.fields["READY"] == "1" }

// mainPid is MAINPID=, 0 when absent or malformed.
func (n notice) mainPid() int {
	pid, err := strconv.Atoi(n.fields["MAINPID"])
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// parseNotice splits a datagram into fields. Lines without '=' are ignored,
// as systemd does.
func parseNotice(b []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			out[k] = v
		}
	}
	return out
}

// notifySocket is a supervisor's receiving socket.
type notifySocket struct {
	path string
	conn *net.UnixConn
	// C delivers every datagram; closed when the socket is closed.
	C chan notice
}

// maxNotice bounds one datagram (systemd accepts up to about 4 KiB too).
const maxNotice = 4096

// listenNotify creates the socket at path: its directory 0700, the socket
// 0600, a stale socket from an earlier supervisor replaced. SO_PASSCRED makes
// the kernel attach each sender's pid, so notices from anyone but the start
// command can be dropped.
func listenNotify(path string) (*notifySocket, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("notify socket dir: %w", err)
	}
	if err := os.Chmod(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("notify socket dir: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale notify socket: %w", err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		conn.Close()
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	if err := setPassCred(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	ns := &notifySocket{path: path, conn: conn, C: make(chan notice, 64)}
	go ns.read()
	return ns, nil
}

func (ns *notifySocket) read() {
	defer close(ns.C)
	buf := make([]byte, maxNotice)
	oob := credBuffer()
	for {
		n, oobn, _, _, err := ns.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return // closed
		}
		nt := notice{fields: parseNotice(buf[:n])}
		nt.pid = senderPid(oob[:oobn])
		ns.C <- nt
	}
}

// Close stops receiving and removes the socket.
func (ns *notifySocket) Close() error {
	err := ns.conn.Close()
	os.Remove(ns.path)
	return err
}
