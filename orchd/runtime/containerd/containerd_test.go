package containerd

import (
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/bare"
	"github.com/orchd/orchd/orchd/spec"
)

func testEnv() contract.Env {
	return contract.Env{ProjectDir: "/proj", StateDir: "/state", DataDir: "/data", Namespace: "orch", Orchd: "/usr/bin/orchd"}
}

func TestCutContainer(t *testing.T) {
	svc := spec.Service{
		Name: "web", Mode: spec.ModeContainer, Image: "nginx",
		Env:      map[string]string{"PASSWORD": "hunter2-secret"},
		EnvFiles: []string{"rel.env", "/abs.env"},
	}
	r := &Runtime{Socket: "/run/x.sock"}
	c, err := r.Cut(svc, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	file := "/state/run/orch.web.crun.json"
	want := []string{"/usr/bin/orchd", "containerd-run", "--spec-file", file}
	if !reflect.DeepEqual(c.Exec.Start, want) {
		t.Errorf("start %q, want %q", c.Exec.Start, want)
	}
	for _, a := range c.Exec.Start {
		if strings.Contains(a, "hunter2") {
			t.Errorf("secret on the command line: %q", c.Exec.Start)
		}
	}
	if len(c.Files) != 1 || c.Files[0].Path != file || c.Files[0].Mode != 0o600 {
		t.Fatalf("files %+v, want one 0600 %s", c.Files, file)
	}
	if !c.Files[0].WithService || strings.Contains(c.Files[0].Content, `"service"`) {
		t.Errorf("the row carries the service twice: file %+v", c.Files[0])
	}
	arts, err := c.FileArtifacts()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := DecodeRunSpec([]byte(arts[0].Content))
	if err != nil {
		t.Fatal(err)
	}
	if rs.ContainerID != "orch-web" || rs.Namespace != "orch" || rs.Socket != "/run/x.sock" || rs.Label != "orch.web" ||
		rs.DataDir != "/data" || rs.ProjectDir != "/proj" || rs.StateDir != "/state" || rs.Service.Env["PASSWORD"] != "hunter2-secret" {
		t.Errorf("run spec %+v", rs)
	}
	if want := []string{"/proj/rel.env", "/abs.env"}; !reflect.DeepEqual(rs.EnvFiles, want) {
		t.Errorf("env files %q, want %q", rs.EnvFiles, want)
	}
	if c.Skip != "" {
		t.Errorf("skip %q", c.Skip)
	}
}

func TestCutHostServiceIsBare(t *testing.T) {
	svc := spec.Service{Name: "api", Mode: spec.ModeHost, RunCommand: "echo hi", Workdir: "app", Resources: spec.Resources{LimitNofile: 10}}
	got, err := (&Runtime{}).Cut(svc, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	want, err := bare.New().Cut(svc, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cut %+v, want bare's %+v", got, want)
	}
}

func TestLoadRunSpec(t *testing.T) {
	rs := RunSpec{Version: RunSpecVersion, Namespace: "n", ContainerID: "n-s", Service: spec.Service{Name: "s", Image: "i"}}
	b, err := rs.Encode()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][2]string{"file": {file, ""}, "base64": {"", base64.StdEncoding.EncodeToString(b)}} {
		got, err := LoadRunSpec(args[0], args[1])
		if err != nil || got.ContainerID != "n-s" {
			t.Errorf("%s: %+v %v", name, got, err)
		}
	}
	for name, args := range map[string][2]string{"none": {"", ""}, "both": {file, "eA=="}, "bad base64": {"", "%%"}} {
		if _, err := LoadRunSpec(args[0], args[1]); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := DecodeRunSpec([]byte(`{"version":"0"}`)); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("old version: %v", err)
	}
}

func TestCheckNamesSocketAndHint(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "no.sock")
	err := (&Runtime{Socket: sock}).Check(t.Context(), testEnv())
	if err == nil {
		t.Fatal("no error for a missing socket")
	}
	for _, want := range []string{sock, "orchd-harness daemon", "containerd &", EnvSocket} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCheckSocketNotServing(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "mute.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close() // accepts, then hangs up: not containerd
		}
	}()
	start := time.Now()
	err = (&Runtime{Socket: sock}).Check(t.Context(), testEnv())
	if err == nil || !strings.Contains(err.Error(), "not serving") || !strings.Contains(err.Error(), sock) {
		t.Errorf("err %v, want 'not serving' naming %s", err, sock)
	}
	if d := time.Since(start); d > dialTimeout+5*time.Second {
		t.Errorf("check took %s", d)
	}
}

func TestCutPublishSamePortWithAddress(t *testing.T) {
	r := &Runtime{}
	for _, tc := range []struct {
		pub  spec.Publish
		fail bool
	}{
		{spec.Publish{Host: 8080, Container: 8080}, false},
		{spec.Publish{Host: 8080, Container: 8080, HostIP: "0.0.0.0"}, false},
		{spec.Publish{Host: 8080, Container: 8080, HostIP: "[::]"}, false},
		{spec.Publish{Host: 9090, Container: 8080, HostIP: "127.0.0.1"}, false},
		{spec.Publish{Host: 8080, Container: 8080, HostIP: "127.0.0.1"}, true},
		{spec.Publish{Host: 8080, Container: 8080, HostIP: "localhost"}, true},
	} {
		svc := spec.Service{Name: "web", Mode: spec.ModeContainer, Image: "nginx", Publish: []spec.Publish{tc.pub}}
		_, err := r.Cut(svc, testEnv())
		if (err != nil) != tc.fail {
			t.Errorf("%+v: err %v, want failure %v", tc.pub, err, tc.fail)
		}
		if err != nil && !strings.Contains(err.Error(), "publish another host port") {
			t.Errorf("%+v: the error names no fix: %v", tc.pub, err)
		}
	}
}

func TestCutRecordsTheOCIRuntime(t *testing.T) {
	t.Setenv(EnvOCIRuntime, "crun")
	c, err := New().Cut(spec.Service{Name: "web", Mode: spec.ModeContainer, Image: "nginx"}, testEnv())
	if err != nil {
		t.Fatal(err)
	}
	arts, err := c.FileArtifacts()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := DecodeRunSpec([]byte(arts[0].Content))
	if err != nil {
		t.Fatal(err)
	}
	if rs.OCIRuntime != "crun" {
		t.Fatalf("run spec OCI runtime %q, want crun", rs.OCIRuntime)
	}
}
