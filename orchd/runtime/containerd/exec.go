package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"golang.org/x/sys/unix"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime"
)

// Exec runs req in the service's task (containerd task exec) with the
// container's own process spec (env, user, cwd) and returns its exit code.
func (r *Runtime) Exec(ctx context.Context, env contract.Env, service string, req runtime.ExecRequest) (int, error) {
	c, err := Connect(ctx, ResolveSocket(r.Socket), env.Namespace, dialTimeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	task, err := loadTask(ctx, c, env.Namespace, service)
	if err != nil {
		return 0, err
	}
	ctr, err := c.LoadContainer(ctx, ContainerID(env.Namespace, service))
	if err != nil {
		return 0, fmt.Errorf("exec %s: %w", service, err)
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec %s: container spec: %w", service, err)
	}
	pspec := *spec.Process
	pspec.Args, pspec.Terminal = req.Argv, req.TTY
	pspec.ConsoleSize = nil

	// The FIFOs live in orchd's state dir, so fell's sweep finds them if this
	// process is killed.
	execID := "exec-" + strconv.Itoa(os.Getpid())
	fifoDir := filepath.Join(contract.Layout{StateDir: env.StateDir}.FIFODir(contract.Label(env.Namespace, service)), execID)
	if err := os.MkdirAll(fifoDir, 0o700); err != nil {
		return 0, fmt.Errorf("exec %s: %w", service, err)
	}
	defer os.RemoveAll(fifoDir)
	opts := []cio.Opt{cio.WithStreams(req.Stdin, req.Stdout, req.Stderr), cio.WithFIFODir(fifoDir)}
	if req.TTY {
		opts = append(opts, cio.WithTerminal)
		if f, ok := req.Stdin.(*os.File); ok {
			restore, err := rawTerminal(int(f.Fd()))
			if err != nil {
				return 0, fmt.Errorf("exec %s: terminal: %w", service, err)
			}
			defer restore()
		}
	}
	// The exec outlives a cancelled ctx long enough to be killed and deleted.
	bg := context.WithoutCancel(ctx)
	proc, err := task.Exec(bg, execID, &pspec, cio.NewCreator(opts...))
	if err != nil {
		return 0, fmt.Errorf("exec %s: %w", service, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		DeleteProcess(dctx, proc)
	}()
	exitC, err := proc.Wait(bg)
	if err != nil {
		return 0, fmt.Errorf("exec %s: wait: %w", service, err)
	}
	if err := proc.Start(bg); err != nil {
		return 0, fmt.Errorf("exec %s: start %q: %w", service, req.Argv[0], err)
	}
	if req.TTY {
		if f, ok := req.Stdin.(*os.File); ok {
			if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
				proc.Resize(bg, uint32(ws.Col), uint32(ws.Row))
			}
		}
	}
	select {
	case st := <-exitC:
		proc.IO().Wait()
		code, _, err := st.Result()
		if err != nil {
			return 0, fmt.Errorf("exec %s: exit status: %w", service, err)
		}
		return int(code), nil
	case <-ctx.Done():
		proc.Kill(bg, syscall.SIGKILL)
		<-exitC
		return 0, ctx.Err()
	}
}

// Kill sends sig to the service's task (its init process); the supervisor
// then applies the restart policy to the exit as to any other.
func (r *Runtime) Kill(ctx context.Context, env contract.Env, service string, sig syscall.Signal) error {
	c, err := Connect(ctx, ResolveSocket(r.Socket), env.Namespace, dialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	task, err := loadTask(ctx, c, env.Namespace, service)
	if err != nil {
		return err
	}
	if err := task.Kill(ctx, sig); err != nil {
		return fmt.Errorf("kill %s: %w", service, err)
	}
	return nil
}

func loadTask(ctx context.Context, c *client.Client, ns, service string) (client.Task, error) {
	id := ContainerID(ns, service)
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("service %s has no container %s in namespace %s (is it running? see orchd survey): %w", service, id, ns, err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("service %s: container %s has no running task (see orchd survey): %w", service, id, err)
	}
	return task, nil
}
