package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/harness/images"
)

func TestImagesAndRegistryCommands(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"images", "--out", dir})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("images: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1+len(images.Names()) || !strings.HasPrefix(lines[0], "NAME") {
		t.Fatalf("images table:\n%s", out.String())
	}
	for i, n := range images.Names() {
		if f := strings.Fields(lines[i+1]); len(f) != 4 || f[0] != n || f[1] != images.Ref(n) || !strings.HasPrefix(f[3], "sha256:") {
			t.Errorf("row %q", lines[i+1])
		}
	}

	out.Reset()
	root = newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"images", "--out", dir, "--json", "--only", images.ProbeUser})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("images --json: %v", err)
	}
	var set images.Set
	if err := json.Unmarshal(out.Bytes(), &set); err != nil || len(set.Layouts) != 1 || set.Layouts[0].Name != images.ProbeUser {
		t.Fatalf("images --json: %v\n%s", err, out.String())
	}

	// registry runs in the foreground until its context ends.
	regCtx, stop := context.WithCancel(ctx)
	defer stop()
	pr, pw := io.Pipe()
	root = newRootCmd()
	root.SetOut(pw)
	root.SetArgs([]string{"registry", "--images", dir, "--addr", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() {
		err := root.ExecuteContext(regCtx)
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("registry printed nothing: %v", <-done)
	}
	m := regexp.MustCompile(`serving on http://(\S+)`).FindStringSubmatch(sc.Text())
	if m == nil {
		t.Fatalf("first line %q", sc.Text())
	}
	go func() {
		for sc.Scan() { // keep the pipe drained
		}
	}()
	resp, err := http.Get("http://" + m[1] + "/v2/probe/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "latest") {
		t.Errorf("tags list: %s %s", resp.Status, body)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("registry exit: %v", err)
	}

	root = newRootCmd()
	root.SetOut(io.Discard)
	root.SetArgs([]string{"registry", "--images", t.TempDir()})
	if err := root.ExecuteContext(ctx); err == nil || !strings.Contains(err.Error(), "orchd-harness images --out") {
		t.Errorf("registry on an empty dir: %v", err)
	}
}
