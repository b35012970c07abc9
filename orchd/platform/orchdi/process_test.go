package orchdi_test

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
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

// TestBareCgroupLimits checks MEMORY, CPUS and TASKS_MAX on a host service:
// the service runs in cgroups carrying them, and they are gone after fell.
func TestBareCgroupLimits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("cgroup limits need root (sudo go test ./orchd/platform/orchdi)")
	}
	w := newWorld(t)
	cpus := 0.5
	w.grow(svc("limited", `exec sleep 1000`, func(s *spec.Service) {
		s.Resources = spec.Resources{Memory: "64M", CPUs: &cpus, TasksMax: 50, IOWeight: 200}
	}))
	row := w.waitRunningHealthy("limited", 10*time.Second)
	want := map[string]string{"memory": "67108864", "cpu": "50000 100000", "pids": "50"}
	got := cgroupLimits(t, row.Pid)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s limit = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	dirs := cgroupDirs(t, row.Pid)
	w.fell()
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s left after fell (%v)", d, err)
		}
	}
}

// cgroupDirs lists the orchd cgroup dirs a process is in.
func cgroupDirs(t *testing.T, pid int) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(readFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup")), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/orchd/") {
			continue
		}
		if parts[1] == "" {
			out = append(out, filepath.Join("/sys/fs/cgroup", parts[2]))
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out = append(out, filepath.Join("/sys/fs/cgroup", c, parts[2]))
		}
	}
	return out
}

// cgroupLimits reads memory, cpu and pids limits of a process (v1 or v2) in
// v2 notation for cpu ("quota period").
func cgroupLimits(t *testing.T, pid int) map[string]string {
	t.Helper()
	got := map[string]string{}
	read := func(p string) string { return strings.TrimSpace(readFile(p)) }
	for _, d := range cgroupDirs(t, pid) {
		switch {
		case fileExists(filepath.Join(d, "memory.max")): // v2: one dir, all files
			got["memory"], got["cpu"], got["pids"] = read(filepath.Join(d, "memory.max")), read(filepath.Join(d, "cpu.max")), read(filepath.Join(d, "pids.max"))
		case fileExists(filepath.Join(d, "memory.limit_in_bytes")):
			got["memory"] = read(filepath.Join(d, "memory.limit_in_bytes"))
		case fileExists(filepath.Join(d, "cpu.cfs_quota_us")):
			got["cpu"] = read(filepath.Join(d, "cpu.cfs_quota_us")) + " " + read(filepath.Join(d, "cpu.cfs_period_us"))
		case fileExists(filepath.Join(d, "pids.max")):
			got["pids"] = read(filepath.Join(d, "pids.max"))
		}
	}
	return got
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
