package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/orchd/orchd/orchd/spec"
)

// ParseTarget is the parse-time goal for a 2,000-service Orchfile with overlays.
const ParseTarget = 50 * time.Millisecond

// GenerateOrchfile returns a base Orchfile of n services (a mix of host and
// container services with dependencies, resources and env) and two overlays
// that touch every fifth service, the shape of a large real project.
func GenerateOrchfile(n int) (base, overlay1, overlay2 []byte) {
	var b, o1, o2 strings.Builder
	b.WriteString("ORCH_VERSION 0.2.1\nARG tag=latest\nARG port=8000\n\n")
	o1.WriteString("ARG tag=v2\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "SERVICE svc-%d\n", i)
		if i%2 == 0 {
			fmt.Fprintf(&b, "FROM registry.example/app-%d:${tag}\nCMD serve --port %d\nPUBLISH %d:%d\nVOLUME data-%d:/data\n", i, 8000+i%1000, 10000+i%50000, 8000+i%1000, i)
		} else {
			fmt.Fprintf(&b, "RUN ./bin/worker --id %d\nWORKDIR services/%d\n", i, i)
		}
		fmt.Fprintf(&b, "ENV ID=%d\nENV MODE=prod\nMEMORY 256M\nCPUS 0.5\nRESTART on-failure\nRESTART_DELAY 2s\nHEALTHCHECK http://localhost:${port}/health\n", i)
		if i > 0 {
			fmt.Fprintf(&b, "REQUIRES svc-%d\n", i-1)
		}
		if i > 1 {
			fmt.Fprintf(&b, "AFTER svc-%d\n", i-2)
		}
		b.WriteString("\n")
		if i%5 == 0 {
			fmt.Fprintf(&o1, "SERVICE svc-%d\nENV MODE=dev\nMEMORY 512M\n\n", i)
			fmt.Fprintf(&o2, "SERVICE svc-%d\nCLEAR ENV\nENV ONLY=this\nTIMEOUT_STOP 5s\n\n", i)
		}
	}
	return []byte(b.String()), []byte(o1.String()), []byte(o2.String())
}

// parse measures parsing a 2,000-service Orchfile with two overlays.
func (r *runner) parse(ctx context.Context) ([]Metric, error) {
	const n = 2000
	base, o1, o2 := GenerateOrchfile(n)
	src := []spec.Source{{Name: "Orchfile", Data: base}, {Name: "dev.orch", Data: o1}, {Name: "ci.orch", Data: o2}}
	var times []float64
	for i := 0; i < max(r.opts.Rounds, 5); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		s, err := spec.Parse(src, spec.Options{LookupEnv: func(string) (string, bool) { return "", false }})
		if err != nil {
			return nil, fmt.Errorf("parse generated Orchfile: %w", err)
		}
		times = append(times, float64(time.Since(t0).Microseconds())/1000)
		if len(s.Services) != n {
			return nil, fmt.Errorf("parse generated Orchfile: %d services, want %d", len(s.Services), n)
		}
	}
	st := stat(times)
	r.logf("parse: %d services + 2 overlays in %.1f ms", n, st.Median)
	return []Metric{target("parse: 2,000 services + 2 overlays", "ms", st, float64(ParseTarget.Milliseconds()), "target 50 ms", len(times))}, nil
}
