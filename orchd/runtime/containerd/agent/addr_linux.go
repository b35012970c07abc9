package agent

// socketAddress is abstract on Linux ("@" in Go's net package).
func socketAddress(_, hash string) string { return "@orchd-containerd-agent-" + hash }
