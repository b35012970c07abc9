package vm_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/runtime/vm"
	"github.com/orchd/orchd/orchd/runtime/vm/guest"
	"github.com/orchd/orchd/orchd/spec"
)

func ptr[T any](v T) *T { return &v }

func TestQemuArgsFromSpec(t *testing.T) {
	svc := spec.Service{
		Name: "web", Mode: spec.ModeContainer, Image: "oci-layout:///img",
		Resources: spec.Resources{Memory: "1536M", CPUs: ptr(1.5)},
		Publish:   []spec.Publish{{Host: 8080, Container: 80, HostIP: "127.0.0.1"}, {Host: 9000, Container: 9000}},
	}
	m := vm.Machine{Kernel: "/k/vmlinuz", Initrd: "/w/initrd.cpio", Append: vm.KernelCmdline(vm.LogQuiet), ControlFD: 3, StderrFD: 4, Publish: svc.Publish,
		Shares: []vm.Share{{Tag: "vol0", Source: "/srv/a,b"}, {Tag: "vol1", Source: "/srv/ro", ReadOnly: true}}}
	if err := m.Resources(svc.Resources); err != nil {
		t.Fatal(err)
	}
	args := m.Args()
	joined := strings.Join(args, " ")
	for _, want := range [][]string{
		{"-m", "1536"}, {"-smp", "2"}, {"-kernel", "/k/vmlinuz"}, {"-initrd", "/w/initrd.cpio"},
		{"-machine", "q35,accel=tcg"}, {"-cpu", "qemu64"},
		{"-fsdev", "local,id=fs0,path=/srv/a,,b,security_model=mapped-xattr"},
		{"-device", "virtio-9p-pci,fsdev=fs0,mount_tag=vol0"},
		{"-fsdev", "local,id=fs1,path=/srv/ro,security_model=mapped-xattr,readonly=on"},
		{"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp::9000-:9000"},
		{"-device", "virtio-net-pci,netdev=net0"},
		{"-chardev", "socket,id=ctl0,fd=3"},
		{"-device", "virtserialport,bus=vser0.0,chardev=ctl0,name=" + guest.ControlPort},
		{"-serial", "chardev:con0"},
		{"-chardev", "socket,id=err0,fd=4"},
		{"-device", "virtserialport,bus=vser0.0,chardev=err0,name=" + guest.StderrPort},
	} {
		if !containsSeq(args, want) {
			t.Errorf("qemu args lack %q:\n%s", want, joined)
		}
	}
	if !strings.Contains(joined, "rdinit=/orchd/orchd") || !strings.HasSuffix(m.Append, "-- vm-init") {
		t.Errorf("kernel cmdline %q does not start orchd's init", m.Append)
	}

	m.KVM = true
	if !containsSeq(m.Args(), []string{"-machine", "q35,accel=kvm"}) {
		t.Errorf("KVM machine not selected: %v", m.Args())
	}

	// Defaults, rounding, and no network without PUBLISH.
	var d vm.Machine
	if err := d.Resources(spec.Resources{Memory: "100K", CPUs: ptr(0.25)}); err != nil {
		t.Fatal(err)
	}
	if d.MemoryMiB != 128 || d.CPUs != 1 {
		t.Errorf("tiny MEMORY/CPUS gave %d MiB / %d cpus, want the 128 MiB floor and 1", d.MemoryMiB, d.CPUs)
	}
	if err := d.Resources(spec.Resources{Memory: "2G"}); err != nil || d.MemoryMiB != 2048 {
		t.Errorf("2G gave %d MiB (%v)", d.MemoryMiB, err)
	}
	if slices.Contains(d.Args(), "-netdev") {
		t.Errorf("network configured without PUBLISH: %v", d.Args())
	}
	if err := d.Resources(spec.Resources{Memory: "lots"}); err == nil {
		t.Error("bad MEMORY accepted")
	}
}

func containsSeq(s, sub []string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if slices.Equal(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

func TestGuestConfigFromImageAndOverrides(t *testing.T) {
	img := ocispec.ImageConfig{
		Entrypoint: []string{"/probe"}, Cmd: []string{"sleep", "forever"},
		Env:        []string{"PATH=/bin", "A=image", "B=image"},
		WorkingDir: "/srv", User: "app",
	}
	passwd := []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234::/home/app:/bin/sh\n")
	group := []byte("root:x:0:\napp:x:1234:\nwheel:x:10:app,other\n")
	svc := spec.Service{
		Name: "probe", Mode: spec.ModeContainer, Cmd: `report --then "sleep 1"`, Workdir: "sub",
		Env:       map[string]string{"B": "env", "C": "env"},
		Timeouts:  spec.Timeouts{Stop: "3s"},
		Publish:   []spec.Publish{{Host: 1, Container: 2}},
		Resources: spec.Resources{},
	}
	cfg, err := vm.GuestConfig(vm.GuestInput{Image: img, Service: svc, Passwd: passwd, Group: group,
		EnvFiles: []map[string]string{{"A": "file1", "B": "file1"}, {"A": "file2"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/probe", "report", "--then", "sleep 1"}; !slices.Equal(cfg.Argv, want) {
		t.Errorf("argv = %q, want %q (image ENTRYPOINT + service CMD)", cfg.Argv, want)
	}
	for _, kv := range []string{"PATH=/bin", "A=file2", "B=env", "C=env", "HOSTNAME=probe", "HOME=/home/app"} {
		if !slices.Contains(cfg.Env, kv) {
			t.Errorf("env lacks %s: %q", kv, cfg.Env)
		}
	}
	if cfg.Dir != "/srv/sub" {
		t.Errorf("dir = %q, want /srv/sub", cfg.Dir)
	}
	if cfg.UID != 1234 || cfg.GID != 1234 || !slices.Equal(cfg.Groups, []uint32{10}) {
		t.Errorf("user = %d:%d %v, want 1234:1234 [10]", cfg.UID, cfg.GID, cfg.Groups)
	}
	if cfg.StopTimeout != 3*time.Second || cfg.Hostname != "probe" || cfg.Network == nil || !cfg.Cgroup2 {
		t.Errorf("stop %v, hostname %q, network %v, cgroup2 %v", cfg.StopTimeout, cfg.Hostname, cfg.Network, cfg.Cgroup2)
	}

	// A new ENTRYPOINT drops the image's CMD; no CMD at all is an error.
	cfg, err = vm.GuestConfig(vm.GuestInput{Image: img, Service: spec.Service{Name: "x", Entrypoint: "/bin/true"}, Passwd: passwd})
	if err != nil || !slices.Equal(cfg.Argv, []string{"/bin/true"}) || cfg.StopTimeout != 10*time.Second {
		t.Errorf("entrypoint override: argv %q stop %v err %v", cfg.Argv, cfg.StopTimeout, err)
	}
	if _, err := vm.GuestConfig(vm.GuestInput{Service: spec.Service{Name: "x"}}); err == nil {
		t.Error("no command accepted")
	}
	if _, err := vm.GuestConfig(vm.GuestInput{Image: ocispec.ImageConfig{Cmd: []string{"x"}, User: "nobody"}, Service: spec.Service{Name: "x"}, Passwd: passwd}); err == nil {
		t.Error("unknown user accepted")
	}
	cfg, err = vm.GuestConfig(vm.GuestInput{Image: ocispec.ImageConfig{Cmd: []string{"x"}, User: "55:66"}, Service: spec.Service{Name: "x"}})
	if err != nil || cfg.UID != 55 || cfg.GID != 66 || !slices.Contains(cfg.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
		t.Errorf("numeric user: %d:%d env %q err %v", cfg.UID, cfg.GID, cfg.Env, err)
	}
}

func TestCutWritesSpecFileNotArgv(t *testing.T) {
	env := contract.Env{ProjectDir: "/p", StateDir: "/s", DataDir: "/d", Namespace: "ns", Orchd: "/bin/orchd"}
	svc := spec.Service{Name: "db", Mode: spec.ModeContainer, Image: "oci-layout:///img", Env: map[string]string{"PASSWORD": "hunter2"}}
	c, err := vm.New().Cut(svc, env)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/bin/orchd", "vm-run", "--spec-file", "/s/run/ns.db.vm.json"}
	if !slices.Equal(c.Exec.Start, want) {
		t.Errorf("start = %q, want %q", c.Exec.Start, want)
	}
	if strings.Contains(strings.Join(c.Exec.Start, " "), "hunter2") {
		t.Error("ENV value on the command line")
	}
	if len(c.Files) != 1 || c.Files[0].Path != want[3] || c.Files[0].Mode != 0o600 {
		t.Fatalf("files = %+v", c.Files)
	}
	arts, err := c.FileArtifacts()
	if err != nil {
		t.Fatal(err)
	}
	var s vm.Spec
	if err := json.Unmarshal([]byte(arts[0].Content), &s); err != nil {
		t.Fatal(err)
	}
	if s.Service.Env["PASSWORD"] != "hunter2" || s.Label != "ns.db" || s.DataDir != "/d" || s.Version != vm.SpecVersion {
		t.Errorf("spec = %+v", s)
	}
	host, err := vm.New().Cut(spec.Service{Name: "h", Mode: spec.ModeHost, RunCommand: "echo hi"}, env)
	if err != nil || !slices.Equal(host.Exec.Start, []string{"/bin/sh", "-c", "echo hi"}) {
		t.Errorf("RUN service: %q %v", host.Exec.Start, err)
	}
}

func TestGuestLimitsFromResources(t *testing.T) {
	l, err := vm.GuestLimits(spec.Resources{Memory: "64M", CPUs: ptr(0.5), TasksMax: 77, IOWeight: 300, LimitNofile: 1234, LimitNproc: 321})
	if err != nil {
		t.Fatal(err)
	}
	if l.CPUMax != "50000 100000" || l.PidsMax != 77 || l.IOWeight != 300 || l.MemoryMax != 64<<20 {
		t.Errorf("limits = %+v, want cpu.max 50000 100000, pids 77, io 300, memory 64M", l)
	}
	want := []guest.Rlimit{{Directive: "LIMIT_NOFILE", Resource: 7, Value: 1234}, {Directive: "LIMIT_NPROC", Resource: 6, Value: 321}}
	if !slices.Equal(l.Rlimits, want) {
		t.Errorf("rlimits = %+v, want %+v", l.Rlimits, want)
	}
	// CPU_QUOTA, the more explicit, wins for cpu.max; CPUS still sizes the VM.
	l, err = vm.GuestLimits(spec.Resources{CPUs: ptr(1.0), CPUQuota: "150%"})
	if err != nil || l.CPUMax != "150000 100000" {
		t.Errorf("CPU_QUOTA 150%%: cpu.max %q (%v)", l.CPUMax, err)
	}
	if l, err = vm.GuestLimits(spec.Resources{}); err != nil || l.CPUMax != "" || l.PidsMax != 0 || len(l.Rlimits) != 0 {
		t.Errorf("no directives: %+v %v", l, err)
	}
	// Below the kernel's minimum quota: refused, naming the directive.
	if _, err := vm.GuestLimits(spec.Resources{CPUs: ptr(0.001)}); err == nil || !strings.Contains(err.Error(), "CPUS 0.001") {
		t.Errorf("CPUS 0.001: err %v, want one naming CPUS", err)
	}
	_, err = vm.New().Cut(spec.Service{Name: "tiny", Mode: spec.ModeContainer, Image: "oci-layout:///img", Resources: spec.Resources{CPUs: ptr(0.001)}}, contract.Env{StateDir: "/s"})
	if err == nil || !strings.Contains(err.Error(), "service tiny: CPUS 0.001") {
		t.Errorf("Cut of CPUS 0.001: err %v, want the sow step to refuse it naming CPUS", err)
	}

	var m vm.Machine
	if err := m.Resources(spec.Resources{CPUQuota: "250%"}); err != nil || m.CPUs != 3 {
		t.Errorf("CPU_QUOTA 250%% without CPUS: %d vCPUs (%v), want 3", m.CPUs, err)
	}
	if err := m.Resources(spec.Resources{CPUs: ptr(0.5), CPUQuota: "250%"}); err != nil || m.CPUs != 1 {
		t.Errorf("CPUS 0.5 with CPU_QUOTA 250%%: %d vCPUs (%v), want ceil(CPUS) = 1", m.CPUs, err)
	}
}

func TestGuestHealthcheckArgv(t *testing.T) {
	img := ocispec.ImageConfig{Cmd: []string{"x"}}
	for _, tc := range []struct {
		hc      string
		oneshot bool
		want    []string
	}{
		{"/probe exit 0", false, []string{"/probe", "exit", "0"}},
		{"pg_isready -q || exit 1", false, []string{"/bin/sh", "-c", "pg_isready -q || exit 1"}},
		{"/probe exit 0", true, nil}, // a oneshot is ready on exit 0, not checked
		{"http://127.0.0.1:8080/", false, nil},
		{"", false, nil},
	} {
		svc := spec.Service{Name: "x", Healthcheck: tc.hc, Oneshot: tc.oneshot}
		cfg, err := vm.GuestConfig(vm.GuestInput{Image: img, Service: svc})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Healthcheck, tc.want) {
			t.Errorf("HEALTHCHECK %q (oneshot %v): argv %q, want %q", tc.hc, tc.oneshot, cfg.Healthcheck, tc.want)
		}
		if (tc.want != nil) != (cfg.HealthTimeout > 0) {
			t.Errorf("HEALTHCHECK %q: timeout %v", tc.hc, cfg.HealthTimeout)
		}
		c, err := vm.New().Cut(spec.Service{Name: "x", Mode: spec.ModeContainer, Image: "oci-layout:///img", Healthcheck: tc.hc, Oneshot: tc.oneshot}, contract.Env{StateDir: "/s"})
		if err != nil || !c.Exec.Notify || c.Exec.NotifyHealth != (tc.want != nil) {
			t.Errorf("HEALTHCHECK %q: Cut notify %v notify_health %v (%v)", tc.hc, c.Exec.Notify, c.Exec.NotifyHealth, err)
		}
	}
}
