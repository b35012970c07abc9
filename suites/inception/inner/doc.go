// Package inner holds the checks that run inside the inception VM: the VM got
// what the outer Orchfile asked for, and containers under the inner containerd
// honor limits on cgroup v2. Its tests carry the `inception` build tag so a
// host-side `go test ./...` never runs VM-only checks on the host; the
// inception harness compiles them with `go test -c -tags inception` and the
// in-VM driver runs them. Run them with `go run ./cmd/orchd-harness inception`
// or `go test ./suites/inception/`.
package inner
