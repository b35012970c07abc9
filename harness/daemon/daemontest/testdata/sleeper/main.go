// Command sleeper waits for SIGTERM or SIGINT and exits 0: the smallest
// long-running static program a test container can run.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	<-ch
}
