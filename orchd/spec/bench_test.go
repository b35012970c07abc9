package spec

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// genProject writes a base Orchfile with n services (every other one a
// container; each requires its predecessor) and two overlays touching a third
// of them.
func genProject(n int) []Source {
	var base, o1, o2 strings.Builder
	base.WriteString("ORCH_VERSION 0.2.1\nARG registry=registry.local:5000\nARG base_port=10000\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&base, "\nSERVICE svc-%d\n", i)
		if i%2 == 0 {
			fmt.Fprintf(&base, "FROM ${registry}/app-%d:latest\nCMD --id %d\nPUBLISH 127.0.0.1:%d:8080\nVOLUME data-%d:/data\n", i, i, 10000+i, i)
		} else {
			fmt.Fprintf(&base, "RUN /bin/sh -c 'exec app --id %d'\nUSER nobody\nWORKDIR srv/%d\n", i, i)
		}
		fmt.Fprintf(&base, "ENV ID=%d\nENV REGISTRY=${registry}\nENV_FILE ${ORCH_PROJECT}/env/%d.env\n", i, i)
		if i > 0 {
			fmt.Fprintf(&base, "REQUIRES svc-%d\n", i-1)
		}
		if i > 1 {
			fmt.Fprintf(&base, "AFTER svc-%d\n", i-2)
		}
		base.WriteString("HEALTHCHECK http://localhost:8080/health\nRESTART on-failure\nRESTART_DELAY 2s\nTIMEOUT_STOP 5s\nMEMORY 256M\nCPUS 0.5\nLIMIT_NOFILE 4096\n")
	}
	o1.WriteString("ARG registry=mirror.local\n")
	for i := 0; i < n; i += 3 {
		fmt.Fprintf(&o1, "SERVICE svc-%d\n  ENV ID=o1-%d\n  CLEAR ENV_FILE\n  MEMORY 512M\n", i, i)
	}
	for i := 1; i < n; i += 3 {
		fmt.Fprintf(&o2, "SERVICE svc-%d\n  ENV EXTRA=1\n  RESTART always\n", i)
	}
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&o2, "SERVICE extra-%d\n  RUN sleep 1000\n  AFTER svc-%d\n", i, i)
	}
	return []Source{
		{Name: "Orchfile", Data: []byte(base.String())},
		{Name: "overlay1.orch", Data: []byte(o1.String())},
		{Name: "overlay2.orch", Data: []byte(o2.String())},
	}
}

// BenchmarkParse2000 parses a 2,000-service Orchfile with two overlays; the
// target is under 50 ms per parse.
func BenchmarkParse2000(b *testing.B) {
	sources := genProject(2000)
	size := 0
	for _, s := range sources {
		size += len(s.Data)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	opts := Options{LookupEnv: noEnv}
	var services int
	cpu0 := cpuTime()
	for b.Loop() {
		s, err := Parse(sources, opts)
		if err != nil {
			b.Fatal(err)
		}
		services = len(s.Services)
	}
	b.ReportMetric(float64(services)*float64(b.N)/b.Elapsed().Seconds(), "services/s")
	// CPU time per parse, which stays meaningful on a loaded machine where
	// ns/op (wall time) includes waiting for a core.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// TestParse2000 keeps the generated project valid, so the benchmark measures a
// successful parse.
func TestParse2000(t *testing.T) {
	s := mustParse(t, Options{}, genProject(2000)...)
	eq(t, len(s.Services), 2010)
	eq(t, s.Services[0].Image, "mirror.local/app-0:latest")
	eq(t, s.Services[0].Env["ID"], "o1-0")
	if _, err := TopoOrder(s.Services); err != nil {
		t.Fatal(err)
	}
}
