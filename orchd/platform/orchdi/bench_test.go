package orchdi_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/platform"
	"github.com/orchd/orchd/orchd/platform/orchdi"
	"github.com/orchd/orchd/orchd/runtime/bare"
)

// BenchmarkGrowFell50 grows 50 host services to all-running, then fells them
// to nothing. It reports the peak RSS (VmHWM) per supervisor.
func BenchmarkGrowFell50(b *testing.B) {
	const n = 50
	p := orchdi.New(orchdi.WithBinary(superviseBin))
	var maxKB, sumKB, count float64
	var growTotal, tendTotal, fellTotal time.Duration
	var anonSum, initSum float64
	for i := 0; i < b.N; i++ {
		state := b.TempDir()
		env := contract.Env{ProjectDir: state, StateDir: state, DataDir: state + "/data", Namespace: fmt.Sprintf("bench%d", i), Orchd: orchdBin}
		c := contract.Cuttings{Version: contract.Version, Runtime: "bare", Env: env}
		for j := 0; j < n; j++ {
			cut, err := bare.New().Cut(svc(fmt.Sprintf("s%02d", j), `exec sleep 1000`), env)
			if err != nil {
				b.Fatal(err)
			}
			c.Cuttings = append(c.Cuttings, cut)
		}
		beds, err := p.Plant(c, "user")
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		start := time.Now()
		if _, err := p.Tend(ctx, beds, platform.TendOptions{}); err != nil {
			cancel()
			b.Fatal(err)
		}
		tendTotal += time.Since(start)
		deadline := time.Now().Add(time.Minute)
		var rows []platform.ServiceStatus
		for {
			rows, err = p.Survey(ctx, env)
			if err != nil {
				b.Fatal(err)
			}
			running := 0
			for _, r := range rows {
				if r.State == contract.StateRunning && r.Healthy {
					running++
				}
			}
			if running == n {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d running after a minute", running, n)
			}
			time.Sleep(10 * time.Millisecond) // poll interval; the deadline bounds the wait
		}
		growTotal += time.Since(start)
		l := contract.Layout{StateDir: state}
		for _, r := range rows {
			st, err := readStatus(l.StatusFile(r.Label))
			if err != nil {
				b.Fatal(err)
			}
			kb := statusKB(st.SupervisorPid, "VmHWM:")
			anonSum += statusKB(st.SupervisorPid, "RssAnon:")
			initSum += statusKB(int(statusKB(st.Pid, "PPid:")), "VmHWM:")
			sumKB += kb
			count++
			if kb > maxKB {
				maxKB = kb
			}
		}
		start = time.Now()
		if err := p.Fell(ctx, env, platform.FellOptions{}); err != nil {
			cancel()
			b.Fatal(err)
		}
		fellTotal += time.Since(start)
		cancel()
		if left := ours(state); len(left) > 0 {
			b.Fatalf("left after fell: %v", left)
		}
	}
	b.ReportMetric(float64(growTotal.Milliseconds())/float64(b.N), "grow-ms/op")
	b.ReportMetric(float64(tendTotal.Milliseconds())/float64(b.N), "tend-ms/op")
	b.ReportMetric(float64(fellTotal.Milliseconds())/float64(b.N), "fell-ms/op")
	b.ReportMetric(maxKB, "max-supervisor-rss-kB")
	b.ReportMetric(sumKB/count, "mean-supervisor-rss-kB")
	// Most of VmHWM is the orchd binary's file-backed pages, shared by every
	// supervisor; RssAnon is what each one costs on its own.
	b.ReportMetric(anonSum/count, "mean-supervisor-anon-kB")
	b.ReportMetric(initSum/count, "mean-init-rss-kB")
}

// statusKB reads one numeric field of /proc/<pid>/status (kB for sizes).
func statusKB(pid int, field string) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb
		}
	}
	return 0
}
