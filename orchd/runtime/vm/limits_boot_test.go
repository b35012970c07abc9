package vm_test

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orchd/orchd/fixtures/probe/report"
	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/vm"
	"github.com/orchd/orchd/orchd/spec"
)

// TestBootResourceLimits reads every resource directive back from inside the
// guest: the command's own cgroup v2 group and its rlimits.
func TestBootResourceLimits(t *testing.T) {
	t.Parallel()
	env := prepareBoot(t)
	svc := probeService(env, "limits", "report")
	svc.Resources = spec.Resources{Memory: "200M", CPUs: ptr(0.5), TasksMax: 77, LimitNofile: 1234, LimitNproc: 321, IOWeight: 300}
	r := boot(t, env, svc, "")
	if r.err != nil || r.code != 0 {
		t.Fatalf("exit = %d (%v), want 0", r.code, r.err)
	}
	rep, err := report.Find([]byte(r.out))
	if err != nil {
		t.Fatalf("no probe report on the console: %v", err)
	}
	cg := rep.Cgroup
	b, _ := json.Marshal(cg)
	t.Logf("guest cgroup: %s", b)
	if cg.Version != 2 || cg.Path != "/service" {
		t.Errorf("the command runs in cgroup v%d %q, want v2 /service (its own group)", cg.Version, cg.Path)
	}
	if cg.CPUQuotaUS == nil || cg.CPUPeriodUS == nil || *cg.CPUQuotaUS != 50000 || *cg.CPUPeriodUS != 100000 {
		t.Errorf("cpu.max for CPUS 0.5 = %v %v, want 50000 100000", deref(cg.CPUQuotaUS), deref(cg.CPUPeriodUS))
	}
	if cg.PidsMax == nil || *cg.PidsMax != 77 {
		t.Errorf("pids.max for TASKS_MAX 77 = %v", deref(cg.PidsMax))
	}
	if cg.MemoryLimitBytes == nil || *cg.MemoryLimitBytes != 200<<20 {
		t.Errorf("memory.max for MEMORY 200M = %v", deref(cg.MemoryLimitBytes))
	}
	// The Debian guest kernel has iocost (CONFIG_BLK_CGROUP_IOCOST=y): io.weight exists.
	if cg.IOWeight == nil || *cg.IOWeight != 300 || cg.IOWeightFile != "io.weight" {
		t.Errorf("io.weight for IO_WEIGHT 300 = %v (from %q)", deref(cg.IOWeight), cg.IOWeightFile)
	}
	for name, want := range map[string]int64{"NOFILE": 1234, "NPROC": 321} {
		if got, ok := rep.Rlimits[name]; !ok || got.Soft != want || got.Hard != want {
			t.Errorf("RLIMIT_%s = %+v, want %d/%d (LIMIT_%s)", name, got, want, want, name)
		}
	}
	if strings.Contains(r.out, "warning") {
		t.Errorf("the guest warned about a limit:\n%s", r.out)
	}
}

func deref(p *int64) any {
	if p == nil {
		return "unreadable"
	}
	return *p
}

// TestBootVolumeSquash: guest root creates a root-owned setuid file in a
// VOLUME; on the host it is neither root-owned nor setuid, while the guest
// still sees what it asked for.
func TestBootVolumeSquash(t *testing.T) {
	t.Parallel()
	env := prepareBoot(t)
	vol := t.TempDir()
	svc := probeService(env, "squash", "mkfile /vol/suid 4755 --then report --stat /vol/suid")
	svc.Volumes = []spec.Volume{{Source: vol, Destination: "/vol"}}
	r := boot(t, env, svc, "")
	if r.err != nil || r.code != 0 {
		t.Fatalf("exit = %d (%v), want 0", r.code, r.err)
	}
	rep, err := report.Find([]byte(r.out))
	if err != nil {
		t.Fatalf("no probe report on the console: %v", err)
	}
	in := rep.Paths["/vol/suid"]
	if rep.UID != 0 || !in.Exists || in.UID != 0 || in.Mode != "4755" {
		t.Fatalf("inside the guest, root (uid %d) should see its file as root-owned 4755: %+v", rep.UID, in)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(vol, "suid"), &st); err != nil {
		t.Fatalf("the file is not on the host: %v", err)
	}
	t.Logf("host view: uid %d gid %d mode %o", st.Uid, st.Gid, st.Mode)
	if st.Uid == 0 || st.Gid == 0 {
		t.Errorf("host file is owned by %d:%d; guest root must not own host files", st.Uid, st.Gid)
	}
	if st.Uid != vm.QemuUID {
		t.Errorf("host file uid %d, want qemu's %d", st.Uid, vm.QemuUID)
	}
	if st.Mode&(syscall.S_ISUID|syscall.S_ISGID|0o111) != 0 {
		t.Errorf("host file mode %o: setuid, setgid or exec bits reached the host", st.Mode)
	}
}

// notice is one sd_notify datagram the leaf sent, with what the console had
// shown when it arrived.
type notice struct {
	fields  map[string]string
	console string
}

// leafProcess runs `orchd vm-run` as supervisors do, with NOTIFY_SOCKET set
// and the init's debug steps on the console, and collects its notices.
type leafProcess struct {
	cmd     *exec.Cmd
	console *syncBuffer
	notices chan notice
	done    chan struct{}
}

func startLeafProcess(t *testing.T, env bootEnv, svc spec.Service) *leafProcess {
	t.Helper()
	state := t.TempDir()
	ce := contract.Env{ProjectDir: t.TempDir(), StateDir: state, DataDir: filepath.Join(state, "data"), Namespace: "t", Orchd: env.orchd}
	c := plantCutting(t, svc, ce)
	sock := filepath.Join(state, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	lp := &leafProcess{console: &syncBuffer{}, notices: make(chan notice, 64), done: make(chan struct{})}
	lp.cmd = exec.Command(c.Exec.Start[0], c.Exec.Start[1:]...)
	lp.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, vm.EnvDebug+"=1")
	lp.cmd.Stdout = lp.console
	var diag syncBuffer
	lp.cmd.Stderr = &diag
	if err := lp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(lp.notices)
				return
			}
			f := map[string]string{}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					f[k] = v
				}
			}
			lp.notices <- notice{fields: f, console: lp.console.String()}
		}
	}()
	go func() {
		_ = lp.cmd.Wait()
		close(lp.done)
	}()
	t.Cleanup(func() {
		_ = lp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-lp.done:
		case <-time.After(2 * time.Minute):
			_ = lp.cmd.Process.Kill()
			<-lp.done
		}
		conn.Close()
		t.Logf("console:\n%s\nleaf:\n%s", lp.console.String(), diag.String())
	})
	return lp
}

// next waits for a notice carrying key.
func (lp *leafProcess) next(t *testing.T, key string, within time.Duration) notice {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case n, ok := <-lp.notices:
			if !ok {
				t.Fatalf("the leaf's notify socket closed before %s", key)
			}
			if _, has := n.fields[key]; has {
				return n
			}
		case <-lp.done:
			t.Fatalf("vm-run exited (%v) before sending %s", lp.cmd.ProcessState, key)
		case <-deadline:
			t.Fatalf("no %s within %v", key, within)
		}
	}
}

// TestLeafReadyAndHealthInGuest: READY=1 (with MAINPID = qemu) comes only
// once the guest init has started the command, and a command HEALTHCHECK
// that can pass only inside the guest (/probe exists in the image, not on the
// host) reads healthy.
func TestLeafReadyAndHealthInGuest(t *testing.T) {
	t.Parallel()
	env := prepareBoot(t)
	if _, err := os.Stat("/probe"); err == nil {
		t.Fatal("/probe exists on this host: the check would pass on the host too")
	}
	svc := probeService(env, "healthy", "sleep forever")
	svc.Healthcheck = "/probe exit 0"
	lp := startLeafProcess(t, env, svc)
	ready := lp.next(t, "READY", 3*time.Minute)
	if ready.fields["READY"] != "1" {
		t.Fatalf("READY=%q", ready.fields["READY"])
	}
	// The init prints "starting [argv]" just before it execs the command.
	if !strings.Contains(ready.console, "orchd-init:") || !strings.Contains(ready.console, "starting [/probe sleep forever]") {
		t.Errorf("READY arrived before the guest started the command; console then:\n%s", ready.console)
	}
	pid, err := strconv.Atoi(ready.fields["MAINPID"])
	if err != nil || pid == lp.cmd.Process.Pid {
		t.Errorf("MAINPID=%q, want qemu's pid (not the leaf's %d)", ready.fields["MAINPID"], lp.cmd.Process.Pid)
	} else if exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); !strings.Contains(exe, "qemu") {
		t.Errorf("MAINPID %d is %q, want qemu", pid, exe)
	}
	h := lp.next(t, vm.HealthKey, 2*time.Minute)
	if got := h.fields[vm.HealthKey]; got != "healthy" {
		t.Errorf("%s=%q, want healthy", vm.HealthKey, got)
	}
}

// TestLeafHealthInGuestUnhealthy: a HEALTHCHECK that fails inside the guest reads unhealthy.
func TestLeafHealthInGuestUnhealthy(t *testing.T) {
	t.Parallel()
	env := prepareBoot(t)
	svc := probeService(env, "unhealthy", "sleep forever")
	svc.Healthcheck = "/probe exit 3"
	lp := startLeafProcess(t, env, svc)
	lp.next(t, "READY", 3*time.Minute)
	h := lp.next(t, vm.HealthKey, 2*time.Minute)
	if got := h.fields[vm.HealthKey]; got != "unhealthy" {
		t.Errorf("%s=%q, want unhealthy", vm.HealthKey, got)
	}
	// The leaf ends with the guest when asked to stop.
	if err := lp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lp.done:
		// The probe exits 128+SIGTERM; vm-run exits with the guest's code.
		if code := lp.cmd.ProcessState.ExitCode(); code != 143 {
			t.Errorf("vm-run exit code %d after SIGTERM, want 143", code)
		}
	case <-time.After(2 * time.Minute):
		t.Error("vm-run did not end within 2m of SIGTERM")
	}
}
