// Package inner is the platforms suite: it runs inside the inception VM whose
// PID 1 is Debian's systemd (`orchd-harness inception --init systemd`) and
// drives the inner orchd with --platform systemd --system, bare and
// containerd services alike: restart policies and the start limit through
// systemd, REQUIRES with a HEALTHCHECK, ONESHOT, MEMORY and CPUS in the
// unit's cgroup, `systemctl` agreeing with `orchd survey`, and fell leaving
// no unit and no containerd object. Its tests carry the `inception` build
// tag; `go test ./suites/platforms/` runs them through the VM.
package inner
