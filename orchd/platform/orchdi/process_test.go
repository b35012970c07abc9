package orchdi_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/spec"
)

// TestBareProcessContext checks that USER, WORKDIR, ENV, ENV_FILE and the
// rlimits of a RUN service really apply to the running process.
func TestBareProcessContext(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("this test switches users and must run as root (sudo go test ./orchd/platform/orchdi)")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v (install the base passwd package: apt-get install base-passwd)", err)
	}
	w := newWorld(t)
	// A world-writable dir the service (as nobody) can enter and write.
	shared, err := os.MkdirTemp("", "orchdi-ctx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	os.Chmod(shared, 0o777)
	proj := filepath.Join(shared, "proj")
	os.MkdirAll(filepath.Join(proj, "sub", "dir"), 0o755)
	w.env.ProjectDir = proj
	envA := filepath.Join(shared, "a.env")
	envB := filepath.Join(shared, "b.env")
	os.WriteFile(envA, []byte("# comment\nFROM_A=a\nSHARED=from-a\nOVERRIDE=file\n"), 0o644)
	os.WriteFile(envB, []byte("\nexport SHARED=\"from-b\"\n"), 0o644)
	out := filepath.Join(shared, "report")

	report := `{ id -u; id -g; pwd; echo "$FROM_A|$SHARED|$OVERRIDE|$PLAIN"; ulimit -n; ulimit -p; echo "$HOME"; } > ` + out + `.tmp && mv ` + out + `.tmp ` + out
	w.grow(svc("ctx", report, func(s *spec.Service) {
		s.Oneshot = true
		s.User = "nobody"
		s.Workdir = "sub/dir"
		s.Env = map[string]string{"OVERRIDE": "env", "PLAIN": "plain"}
		s.EnvFiles = []string{envA, envB}
		s.Resources = spec.Resources{LimitNofile: 1234, LimitNproc: 321}
	}))
	w.waitState("ctx", contract.StateExited, 10*time.Second)
	got := strings.Split(strings.TrimSpace(readFile(out)), "\n")
	want := []string{nobody.Uid, nobody.Gid, filepath.Join(proj, "sub", "dir"), "a|from-b|env|plain", "1234", "321", nobody.HomeDir}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("process context:\n got %q\nwant %q", got, want)
	}
}

func TestEnvNeverOnCommandLine(t *testing.T) {
	w := newWorld(t)
	secret := "s3cr3t-value-42"
	w.grow(svc("sec", `exec sleep 1000`, func(s *spec.Service) { s.Env = map[string]string{"TOKEN": secret} }))
	w.waitRunningHealthy("sec", 10*time.Second)
	for _, p := range ours(w.env.StateDir, w.proj) {
		if strings.Contains(p, secret) {
			t.Errorf("secret on a command line: %s", p)
		}
	}
	fi, err := os.Stat(w.layout().UnitFile(w.label("sec")))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("unit file holding ENV must be 0600: %v %v", fi, err)
	}
	fi, err = os.Stat(w.layout().StatusFile(w.label("sec")))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("status file must be 0600: %v %v", fi, err)
	}
}
