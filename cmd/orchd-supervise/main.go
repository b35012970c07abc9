// Command orchd-supervise is `orchd supervise` in a binary of its own. One runs
// per service (plus one PID-namespace init per running host command), so it links
// only the supervisor: without the containerd client and the CLI, each process
// starts in a fraction of the memory the full orchd needs. The orchdi platform
// uses it when it sits next to the orchd binary, and `orchd supervise` otherwise;
// both take the same arguments: supervise [--init] --spec UNIT.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/orchd/orchd/orchd/supervise"
	"github.com/orchd/orchd/orchd/version"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Print(version.Read().String("orchd-supervise"))
		return
	}
	if len(os.Args) < 2 || os.Args[1] != "supervise" {
		fmt.Fprintln(os.Stderr, "usage: orchd-supervise supervise [--init] --spec UNIT | orchd-supervise --version")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("supervise", flag.ExitOnError)
	unit := fs.String("spec", "", "the unit file (JSON) to supervise")
	asInit := fs.Bool("init", false, "run as the PID 1 of a command's namespace (internal)")
	fs.Parse(os.Args[2:])
	if *asInit {
		os.Exit(supervise.InitMain())
	}
	if *unit == "" {
		fmt.Fprintln(os.Stderr, "orchd-supervise: --spec UNIT is required")
		os.Exit(2)
	}
	// A supervisor waits on its service nearly all the time: one P spins
	// no idle thread looking for work while N supervisors share the cores.
	runtime.GOMAXPROCS(1)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := supervise.Run(ctx, *unit); err != nil {
		fmt.Fprintln(os.Stderr, "orchd supervise:", err)
		os.Exit(1)
	}
}
