package containerd

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
)

// goneTask is a stopped task whose delete answers deleteErr, as crun's
// "container not created" reaches the client: not found.
type goneTask struct {
	client.Task
	deleteErr error
}

func (t goneTask) ID() string { return "t1" }
func (t goneTask) Kill(context.Context, syscall.Signal, ...client.KillOpts) error {
	return nil
}
func (t goneTask) Status(context.Context) (client.Status, error) {
	return client.Status{Status: client.Stopped}, nil
}
func (t goneTask) Delete(context.Context, ...client.ProcessDeleteOpts) (*client.ExitStatus, error) {
	return nil, t.deleteErr
}

type taskContainer struct {
	client.Container
	task client.Task
}

func (c taskContainer) ID() string { return "t1" }
func (c taskContainer) Task(context.Context, cio.Attach) (client.Task, error) {
	return c.task, nil
}

func TestKillTaskTakesNotFoundOnDeleteForGone(t *testing.T) {
	ctr := taskContainer{task: goneTask{deleteErr: fmt.Errorf("container not created: %w", errdefs.ErrNotFound)}}
	if err := KillTask(context.Background(), nil, ctr); err != nil {
		t.Fatalf("a task the runtime no longer has is gone, not an error: %v", err)
	}
	ctr = taskContainer{task: goneTask{deleteErr: fmt.Errorf("shim is busy: %w", errdefs.ErrUnavailable)}}
	if err := KillTask(context.Background(), nil, ctr); err == nil {
		t.Fatal("a delete that failed for another reason must be an error")
	}
}
