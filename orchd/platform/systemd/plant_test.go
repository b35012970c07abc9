package systemd_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/orchd/orchd/orchd/contract"
	"github.com/orchd/orchd/orchd/orchard"
	"github.com/orchd/orchd/orchd/platform/systemd"
	"github.com/orchd/orchd/orchd/spec"
)

var update = flag.Bool("update", false, "rewrite the golden units under testdata/golden")

// plantTestdata parses testdata/Orchfile, sows it for runtime and plants it
// for the user manager of a fixed home.
func plantTestdata(t *testing.T, runtime string) contract.Beds {
	t.Helper()
	s, err := spec.ParseFiles([]string{"testdata/Orchfile"}, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := orchard.Runtime(runtime)
	if err != nil {
		t.Fatal(err)
	}
	env := contract.Env{ProjectDir: "/srv/proj", StateDir: "/var/lib/orch", DataDir: "/var/lib/orch/data", Namespace: "shop", Orchd: "/usr/local/bin/orchd"}
	c, err := orchard.Sow(s, rt, env)
	if err != nil {
		t.Fatal(err)
	}
	b, err := orchard.Plant(c, systemd.New("user", systemd.WithUnitDir("/home/u/.config/systemd/user")), "user")
	if err != nil {
		t.Fatal(err)
	}
	return *b
}

func TestPlantGolden(t *testing.T) {
	for _, runtime := range []string{"bare", "containerd"} {
		t.Run(runtime, func(t *testing.T) {
			beds := plantTestdata(t, runtime)
			if beds.Platform != "systemd" || beds.Namespace != "shop" || beds.Scope != "user" {
				t.Fatalf("beds header %+v", beds)
			}
			units := 0
			for _, b := range beds.Beds {
				for _, a := range b.Artifacts {
					if a.Kind != systemd.KindUnit {
						continue
					}
					units++
					if want := "/home/u/.config/systemd/user/orch-shop-" + b.Service + ".service"; a.Path != want {
						t.Errorf("unit path %s, want %s", a.Path, want)
					}
					if a.Mode != 0o644 {
						t.Errorf("%s: mode %o, want 0644 (units hold no secret)", a.Path, a.Mode)
					}
					golden := filepath.Join("testdata", "golden", runtime, filepath.Base(a.Path))
					if *update {
						os.MkdirAll(filepath.Dir(golden), 0o755)
						if err := os.WriteFile(golden, []byte(a.Content), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					want, err := os.ReadFile(golden)
					if err != nil {
						t.Fatalf("%v (run go test -run TestPlantGolden -update to create it)", err)
					}
					if a.Content != string(want) {
						t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", a.Path, golden, a.Content, want)
					}
				}
			}
			wantUnits := 3 // db, web, cache; box is FROM and skipped by bare
			if runtime == "containerd" {
				wantUnits = 4
			}
			if units != wantUnits {
				t.Errorf("%d units, want %d", units, wantUnits)
			}
		})
	}
}

// TestPlantMapping names each directive's systemd counterpart, so a change
// to the golden files cannot silently drop one.
func TestPlantMapping(t *testing.T) {
	web := unitOf(t, plantTestdata(t, "bare"), "web")
	for _, line := range []string{
		"Requires=orch-shop-db.service",
		"After=orch-shop-db.service orch-shop-cache.service",
		"StartLimitBurst=5", "StartLimitIntervalSec=60",
		"Type=exec",
		`ExecStart="/bin/sh" "-c" "serve --msg \"100%% of $$HOME is \\\"quoted\\\"\""`,
		`ExecStartPost="/usr/local/bin/orchd" "health-wait" "--readiness-timeout" "120s" "--" "http://127.0.0.1:8080/health"`,
		`ExecStop="/bin/sh" "-c" "kill -TERM $$MAINPID"`,
		"Restart=on-failure", "RestartSec=3",
		"TimeoutStartSec=120", "TimeoutStopSec=7",
		"User=daemon", "WorkingDirectory=/srv/proj/app",
		"EnvironmentFile=/srv/proj/secrets.env\nEnvironmentFile=/var/lib/orch/run/shop.web.env",
		"LimitNOFILE=4096:4096", "LimitNPROC=512:512",
		"MemoryMax=268435456", "CPUQuota=150%", "TasksMax=64", "IOWeight=200",
		"StandardOutput=append:/srv/proj/logs/web.out", "StandardError=append:/var/log/web.err",
	} {
		if !strings.Contains(web, line+"\n") {
			t.Errorf("web unit lacks %q:\n%s", line, web)
		}
	}
	db := unitOf(t, plantTestdata(t, "bare"), "db")
	for _, line := range []string{"Type=oneshot", "RemainAfterExit=yes", "Restart=no", "TimeoutStartSec=300"} {
		if !strings.Contains(db, line+"\n") {
			t.Errorf("db unit lacks %q:\n%s", line, db)
		}
	}
	if strings.Contains(db, "StartLimitBurst") {
		t.Errorf("a oneshot never restarts, it needs no start limit:\n%s", db)
	}
	cache := unitOf(t, plantTestdata(t, "bare"), "cache")
	for _, line := range []string{"CPUQuota=150%", "Restart=always", `ExecStartPost="/usr/local/bin/orchd" "health-wait" "--readiness-timeout" "90s" "--" "cache-cli ping"`} {
		if !strings.Contains(cache, line+"\n") {
			t.Errorf("cache unit lacks %q:\n%s", line, cache)
		}
	}
}

func TestPlantKeepsSecretsOutOfUnits(t *testing.T) {
	for _, runtime := range []string{"bare", "containerd"} {
		beds := plantTestdata(t, runtime)
		secretFiles := 0
		for _, b := range beds.Beds {
			for _, a := range b.Artifacts {
				holds := strings.Contains(a.Content, "hunter2") || strings.Contains(a.Content, "box-secret-value")
				if a.Kind == systemd.KindUnit && holds {
					t.Errorf("%s: unit %s holds an ENV value:\n%s", runtime, a.Path, a.Content)
				}
				if holds {
					secretFiles++
					if a.Mode != 0o600 {
						t.Errorf("%s: %s holds an ENV value with mode %o, want 0600", runtime, a.Path, a.Mode)
					}
				}
			}
		}
		if secretFiles == 0 {
			t.Errorf("%s: no artifact carries the ENV values at all", runtime)
		}
	}
	env := artifact(t, plantTestdata(t, "bare"), "web", systemd.KindEnv)
	if want := "GREETING=\"say \\\"hi\\\" \\$USER\"\nSECRET=\"hunter2-never-in-a-unit\"\n"; env.Content != want {
		t.Errorf("env file:\n%s\nwant:\n%s", env.Content, want)
	}
}

// TestPlantVerifiesWithSystemd runs systemd's own parser over the planted
// units: no unknown key, no bad value.
func TestPlantVerifiesWithSystemd(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is needed to check unit syntax: apt-get install -y systemd (%v)", err)
	}
	dir := t.TempDir()
	for _, runtime := range []string{"bare", "containerd"} {
		for _, b := range plantTestdata(t, runtime).Beds {
			for _, a := range b.Artifacts {
				if a.Kind != systemd.KindUnit {
					continue
				}
				// verify wants executables that exist here.
				text := strings.ReplaceAll(a.Content, "/usr/local/bin/orchd", "/bin/true")
				path := filepath.Join(dir, filepath.Base(a.Path))
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				cmd := exec.Command(analyze, "verify", "--man=no", "--recursive-errors=no", path)
				cmd.Stdout, cmd.Stderr = &out, &out
				err := cmd.Run()
				// Only complaints about this unit count: its dependencies
				// are not installed in the temp dir.
				var bad []string
				for _, l := range strings.Split(out.String(), "\n") {
					if strings.Contains(l, filepath.Base(path)+":") {
						bad = append(bad, l)
					}
				}
				if err != nil || len(bad) > 0 {
					t.Errorf("%s/%s: systemd-analyze verify: %v\n%s", runtime, b.Service, err, out.String())
				}
			}
		}
	}
}

func unitOf(t *testing.T, beds contract.Beds, service string) string {
	return artifact(t, beds, service, systemd.KindUnit).Content
}

func artifact(t *testing.T, beds contract.Beds, service, kind string) contract.Artifact {
	t.Helper()
	for _, b := range beds.Beds {
		if b.Service != service {
			continue
		}
		for _, a := range b.Artifacts {
			if a.Kind == kind {
				return a
			}
		}
	}
	t.Fatalf("no %s artifact for %s", kind, service)
	return contract.Artifact{}
}
