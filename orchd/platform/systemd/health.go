package systemd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Health probing: a fast cadence (the start job, and every REQUIRES
// dependent, waits on it), each check bounded.
const (
	probeEvery   = 250 * time.Millisecond
	checkTimeout = 5 * time.Second
)

// WaitHealthy runs HEALTHCHECK check until it passes or timeout ends: an
// http(s) URL must answer 2xx (checked natively, no proxy), anything else
// runs as `/bin/sh -c check` and must exit 0. It backs `orchd health-wait`,
// the ExecStartPost= that makes a unit's start job (and so its REQUIRES
// dependents) wait for health. Check output goes to log.
func WaitHealthy(ctx context.Context, check string, timeout time.Duration, log io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: checkTimeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	var last error
	for {
		last = checkOnce(ctx, client, check, log)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("HEALTHCHECK %q did not pass within %s: %v", check, timeout, last)
		case <-time.After(probeEvery):
		}
	}
}

func checkOnce(ctx context.Context, client *http.Client, check string, log io.Writer) error {
	if strings.HasPrefix(check, "http://") || strings.HasPrefix(check, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, check, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("GET %s: %s", check, resp.Status)
		}
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, "/bin/sh", "-c", check)
	cmd.Stdout, cmd.Stderr, cmd.Env = log, log, os.Environ()
	return cmd.Run()
}
