# Every recipe is also a plain command (see README.md); `just` is optional.

# The commit is stamped explicitly: GOFLAGS may carry -buildvcs=false.
build:
    CGO_ENABLED=0 go build -ldflags "-X github.com/orchd/orchd/orchd/version.commit=$(git rev-parse --short HEAD 2>/dev/null)" -o bin/ ./cmd/orchd ./cmd/orchd-supervise
    go build -ldflags "-X github.com/orchd/orchd/orchd/version.commit=$(git rev-parse --short HEAD 2>/dev/null)" -o bin/orchd-harness ./cmd/orchd-harness

test:
    go test ./...

suites:
    go run ./cmd/orchd-harness suites --report-dir reports

stress cycles="10" services="6":
    go run ./cmd/orchd-harness stress --cycles {{cycles}} --services {{services}}

inception:
    go run ./cmd/orchd-harness inception

bench:
    go run ./cmd/orchd-harness bench

stage:
    go run ./cmd/orchd-harness stage --containerd v2.2.1
    go run ./cmd/orchd-harness stage --all
