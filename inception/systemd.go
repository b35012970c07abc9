package inception

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/orchd/orchd/orchd/runtime/vm/guest"
)

// Inits the inception guest can run as PID 1.
const (
	// InitOrchd is orchd's own guest init running the driver (the default).
	InitOrchd = "orchd"
	// InitSystemd hands PID 1 to Debian's systemd, which starts the driver
	// as a unit; suites then drive the inner orchd with --platform systemd.
	InitSystemd = "systemd"
)

// systemdPackages are the Debian packages the systemd guest unpacks: the
// manager and its private library, D-Bus (the bus daemon is not started:
// orchd talks to the manager over its private socket as root), and a static
// busybox for the shell and tools host services run with.
func systemdPackages() []string {
	return []string{"systemd", "libsystemd-shared", "libsystemd0", "dbus-bin", "dbus-daemon", "libdbus-1-3", "busybox-static"}
}

// SystemdTree is a staged, unpacked systemd: Root holds the packages'
// files at their paths; Binaries are the ELF files whose libraries the image
// must carry.
type SystemdTree struct {
	Root     string
	Binaries []string
}

// StageSystemd fetches the packages with apt-get download and unpacks them
// with dpkg -x into ~/.cache/orchd-harness/systemd (kept for later runs), as
// the kernel is staged.
func StageSystemd(ctx context.Context, progress io.Writer) (SystemdTree, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return SystemdTree{}, err
	}
	// The cache is keyed by the package list, so a changed list restages.
	sum := sha256.Sum256([]byte(strings.Join(systemdPackages(), " ")))
	dir := filepath.Join(cache, "orchd-harness", "systemd", hex.EncodeToString(sum[:6]))
	root := filepath.Join(dir, "root")
	t := SystemdTree{Root: root}
	bins := []string{"lib/systemd/systemd", "bin/systemctl", "usr/bin/dbus-daemon"}
	for _, b := range bins {
		t.Binaries = append(t.Binaries, filepath.Join(root, b))
	}
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		fmt.Fprintf(progress, "systemd: cached in %s\n", dir)
		return t, nil
	}
	for _, tool := range []string{"apt-get", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			return t, fmt.Errorf("stage systemd: %s is needed: apt-get install -y apt dpkg", tool)
		}
	}
	debs := filepath.Join(dir, "debs")
	if err := os.RemoveAll(dir); err != nil {
		return t, err
	}
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return t, err
	}
	fmt.Fprintf(progress, "systemd: apt-get download %s\n", strings.Join(systemdPackages(), " "))
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"download"}, systemdPackages()...)...)
	cmd.Dir = debs
	if out, err := cmd.CombinedOutput(); err != nil {
		return t, fmt.Errorf("stage systemd: apt-get download: %w: %s (run apt-get update first)", err, strings.TrimSpace(string(out)))
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	if len(files) != len(systemdPackages()) {
		return t, fmt.Errorf("stage systemd: apt-get download left %d packages, want %d", len(files), len(systemdPackages()))
	}
	for _, f := range files {
		if out, err := exec.CommandContext(ctx, "dpkg", "-x", f, root).CombinedOutput(); err != nil {
			return t, fmt.Errorf("stage systemd: dpkg -x %s: %w: %s", filepath.Base(f), err, out)
		}
	}
	for _, b := range t.Binaries {
		if _, err := os.Stat(b); err != nil {
			return t, fmt.Errorf("stage systemd: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644); err != nil {
		return t, err
	}
	fmt.Fprintf(progress, "systemd: unpacked into %s\n", root)
	return t, nil
}

// systemdUnits are the files that make the driver systemd's only job: a
// default target that wants the driver's unit, which runs with the
// manifest's environment, writes to the console and powers off when done.
func systemdUnits() map[string]string {
	return map[string]string{
		"etc/systemd/system/orchd-inception.target": `[Unit]
Description=orchd inception
Wants=orchd-inception.service
AllowIsolate=yes
`,
		"etc/systemd/system/orchd-inception.service": `[Unit]
Description=orchd inception driver
# Default dependencies: the driver starts once sysinit.target is done, so
# boot-time jobs (systemd-tmpfiles --boot empties /tmp) run before it, not
# under the suites' feet when their first unit pulls sysinit.target in.
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=exec
ExecStart=` + ToolsDir + `/driver
Environment=PATH=` + ToolsDir + `/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
Environment=ORCHD_INCEPTION_INIT=systemd
Environment=HOME=/root
WorkingDirectory=/
StandardOutput=tty
StandardError=tty
TTYPath=/dev/console
TimeoutStartSec=infinity
`,
		"etc/machine-id": "",
		// No journald in the guest: the manager logs to the console, which
		// is the outer service's log.
		"etc/systemd/system.conf": "[Manager]\nLogTarget=console\nLogLevel=info\nShowStatus=no\n",
	}
}

// systemdImage is what the systemd guest adds to the inception image:
// the unpacked packages, the driver's unit, systemd as the entrypoint and
// the label that makes the vm runtime hand it PID 1.
func systemdImage(t SystemdTree) ImageExtra {
	return ImageExtra{
		Tree:       t.Root,
		Files:      systemdUnits(),
		Links:      systemdLinks(),
		Entrypoint: []string{"/lib/systemd/systemd"},
		Labels:     map[string]string{guest.InitLabel: "exec"},
	}
}

// busyboxApplets are the commands the guest's host-mode services use.
func busyboxApplets() []string {
	return []string{"sh", "sleep", "cat", "echo", "test", "touch", "true", "false", "ls", "mkdir", "rm", "kill", "id", "ps", "head", "yes"}
}

func systemdLinks() map[string]string {
	l := map[string]string{"etc/systemd/system/default.target": "orchd-inception.target"}
	for _, a := range busyboxApplets() {
		l["usr/local/bin/"+a] = "/bin/busybox"
	}
	l["bin/sh"] = "busybox"
	return l
}
