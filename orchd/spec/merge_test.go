package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

func TestMerge(t *testing.T) {
	cases := []struct {
		name  string
		base  []string
		over  []string
		check func(t *testing.T, s *Spec)
	}{
		{"scalars last wins, absent keeps base",
			[]string{"SERVICE a", "RUN x", "MEMORY 1G", "WORKDIR /w", "RESTART always"},
			[]string{"SERVICE a", "  MEMORY 2G", "  RUN y"},
			func(t *testing.T, s *Spec) {
				a := svc(t, s, "a")
				eq(t, a.RunCommand, "y")
				eq(t, a.Resources.Memory, "2G")
				eq(t, a.Workdir, "/w")
				eq(t, a.Restart.Policy, RestartAlways)
			}},
		{"ENV by key",
			[]string{"SERVICE a", "RUN x", "ENV A=1", "ENV B=2"},
			[]string{"SERVICE a", "ENV B=3", "ENV C=4"},
			func(t *testing.T, s *Spec) {
				eq(t, svc(t, s, "a").Env, map[string]string{"A": "1", "B": "3", "C": "4"})
			}},
		{"PUBLISH by container port",
			[]string{"SERVICE a", "FROM x", "PUBLISH 8080:80", "PUBLISH 8443:443"},
			[]string{"SERVICE a", "PUBLISH 127.0.0.1:9090:80", "PUBLISH 5000:5000"},
			func(t *testing.T, s *Spec) {
				eq(t, svc(t, s, "a").Publish, []Publish{{Host: 9090, Container: 80, HostIP: "127.0.0.1"}, {Host: 8443, Container: 443}, {Host: 5000, Container: 5000}})
			}},
		{"PUBLISH: an overlay's entries for a container port replace all earlier ones for it",
			[]string{"SERVICE a", "FROM x", "PUBLISH 127.0.0.1:8080:80", "PUBLISH 53:53", "PUBLISH [::1]:8080:80"},
			[]string{"SERVICE a", "PUBLISH 9090:80", "PUBLISH 9091:80"},
			func(t *testing.T, s *Spec) {
				eq(t, svc(t, s, "a").Publish, []Publish{{Host: 9090, Container: 80}, {Host: 9091, Container: 80}, {Host: 53, Container: 53}})
			}},
		{"VOLUME by destination",
			[]string{"SERVICE a", "FROM x", "VOLUME data:/data", "VOLUME /etc/x:/etc/x"},
			[]string{"SERVICE a", "VOLUME /srv/data:/data/", "VOLUME logs:/logs"},
			func(t *testing.T, s *Spec) {
				eq(t, svc(t, s, "a").Volumes, []Volume{{Source: "/srv/data", Destination: "/data/"}, {Source: "/etc/x", Destination: "/etc/x"}, {Source: "logs", Destination: "/logs", IsNamed: true}})
			}},
		{"REQUIRES AFTER ENV_FILE append and dedup",
			[]string{"SERVICE a", "RUN x", "REQUIRES b", "AFTER c", "ENV_FILE .env", "SERVICE b", "RUN y", "SERVICE d", "RUN z"},
			[]string{"SERVICE a", "REQUIRES d b", "AFTER c e", "ENV_FILE .env.local", "ENV_FILE .env"},
			func(t *testing.T, s *Spec) {
				a := svc(t, s, "a")
				eq(t, a.Requires, []string{"b", "d"})
				eq(t, a.After, []string{"c", "e"})
				eq(t, a.EnvFiles, []string{".env", ".env.local"})
			}},
		{"CLEAR each list, before this file's values",
			[]string{"SERVICE a", "FROM x", "ENV A=1", "ENV_FILE f", "PUBLISH 1:1", "VOLUME v:/v", "REQUIRES b", "AFTER c", "SERVICE b", "RUN y"},
			[]string{"SERVICE a", "ENV N=1", "CLEAR ENV", "CLEAR ENV_FILE", "CLEAR PUBLISH", "CLEAR VOLUME", "CLEAR REQUIRES", "CLEAR AFTER", "PUBLISH 2:2"},
			func(t *testing.T, s *Spec) {
				a := svc(t, s, "a")
				eq(t, a.Env, map[string]string{"N": "1"})
				eq(t, a.Publish, []Publish{{Host: 2, Container: 2}})
				if a.EnvFiles != nil || a.Volumes != nil || a.Requires != nil || a.After != nil {
					t.Errorf("lists not cleared: %+v", a)
				}
			}},
		{"CLEAR several at once",
			[]string{"SERVICE a", "RUN x", "ENV A=1", "AFTER c"},
			[]string{"SERVICE a", "CLEAR ENV AFTER"},
			func(t *testing.T, s *Spec) {
				a := svc(t, s, "a")
				if a.Env != nil || a.After != nil {
					t.Errorf("lists not cleared: %+v", a)
				}
			}},
		{"overlay-only service appended, base order kept",
			[]string{"SERVICE b", "RUN x", "SERVICE a", "RUN y"},
			[]string{"SERVICE c", "RUN z", "SERVICE a", "MEMORY 1M"},
			func(t *testing.T, s *Spec) {
				var names []string
				for _, v := range s.Services {
					names = append(names, v.Name)
				}
				eq(t, names, []string{"b", "a", "c"})
			}},
		{"mode switch RUN -> FROM clears USER/STOP/RELOAD",
			[]string{"SERVICE a", "RUN x", "USER u", "STOP s", "RELOAD r", "ENV A=1"},
			[]string{"SERVICE a", "FROM img", "CMD c"},
			func(t *testing.T, s *Spec) {
				a := svc(t, s, "a")
				eq(t, a.Mode, ModeContainer)
				eq(t, a.Image, "img")
				eq(t, a.Cmd, "c")
				eq(t, a.RunCommand+a.User+a.StopCommand+a.ReloadCommand, "")
				eq(t, a.Env, map[string]string{"A": "1"})
			}},
		{"mode switch FROM -> RUN clears ENTRYPOINT/CMD/PUBLISH/VOLUME",
			[]string{"SERVICE a", "FROM img", "ENTRYPOINT e", "CMD c", "PUBLISH 1:2", "VOLUME v:/v", "MEMORY 1G"},
			[]string{"SERVICE a", "RUN x", "USER u"},
			func(t *testing.T, s *Spec) {
				a := svc(t, s, "a")
				eq(t, a.Mode, ModeHost)
				eq(t, a.RunCommand, "x")
				eq(t, a.User, "u")
				eq(t, a.Image+a.Entrypoint+a.Cmd, "")
				if a.Publish != nil || a.Volumes != nil {
					t.Errorf("container lists kept: %+v", a)
				}
				eq(t, a.Resources.Memory, "1G")
			}},
		{"overlay ARG changes base expansion",
			[]string{"ARG port=5432", "ARG host=db", "SERVICE a", "FROM x", "PUBLISH ${port}:5432", "ENV URL=${host}:${port}"},
			[]string{"ARG port=6543"},
			func(t *testing.T, s *Spec) {
				a := svc(t, s, "a")
				eq(t, a.Publish, []Publish{{Host: 6543, Container: 5432}})
				eq(t, a.Env["URL"], "db:6543")
				eq(t, s.Args, map[string]string{"port": "6543", "host": "db"})
			}},
		{"ARG declared after use still applies (deferred expansion)",
			[]string{"SERVICE a", "RUN echo ${late}"},
			[]string{"ARG late=yes"},
			func(t *testing.T, s *Spec) { eq(t, svc(t, s, "a").RunCommand, "echo yes") }},
		{"ARG defaults refer to ARGs and built-ins",
			[]string{"ARG base=${ORCH_DATA}/app", "ARG logs=${base}/logs", "SERVICE a", "RUN x", "STDOUT ${logs}/out"},
			nil,
			func(t *testing.T, s *Spec) {
				eq(t, svc(t, s, "a").Logging.Stdout, "${ORCH_DATA}/app/logs/out")
				eq(t, s.Args["logs"], "${ORCH_DATA}/app/logs")
			}},
		{"ARG inside a SERVICE block is global",
			[]string{"SERVICE a", "RUN echo ${v}", "ARG v=1", "SERVICE b", "RUN echo ${v}"},
			nil,
			func(t *testing.T, s *Spec) {
				eq(t, svc(t, s, "a").RunCommand, "echo 1")
				eq(t, svc(t, s, "b").RunCommand, "echo 1")
			}},
		{"second overlay sees the first overlay's result",
			[]string{"SERVICE a", "RUN x", "ENV A=base"},
			[]string{"SERVICE a", "ENV A=o1", "ENV B=o1"},
			func(t *testing.T, s *Spec) { eq(t, svc(t, s, "a").Env, map[string]string{"A": "o1", "B": "o1"}) }},
		{"service name from an ARG",
			[]string{"ARG prefix=dev", "SERVICE ${prefix}-web", "RUN x"},
			nil,
			func(t *testing.T, s *Spec) { svc(t, s, "dev-web") }},
		{"same service in base and overlay is not a duplicate",
			[]string{"SERVICE a", "RUN x"},
			[]string{"SERVICE a", "RUN y"},
			func(t *testing.T, s *Spec) { eq(t, len(s.Services), 1) }},
		{"AFTER undefined is allowed",
			[]string{"SERVICE a", "RUN x", "AFTER localstack"},
			nil,
			func(t *testing.T, s *Spec) { eq(t, svc(t, s, "a").After, []string{"localstack"}) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sources := []Source{src("Orchfile", tc.base...)}
			if tc.over != nil {
				sources = append(sources, src("overlay.orch", tc.over...))
			}
			tc.check(t, mustParse(t, Options{}, sources...))
		})
	}
}

func TestArgPrecedence(t *testing.T) {
	base := src("Orchfile", "ARG a=file", "ARG b=file", "ARG c=file", "SERVICE s", "RUN echo ${a} ${b} ${c} ${d}")
	over := src("overlay.orch", "ARG c=overlay")
	env := func(k string) (string, bool) {
		switch k {
		case "ORCH_ARG_a", "ORCH_ARG_b":
			return "env", true
		case "ORCH_ARG_d": // d is not declared: the environment does not define it
			return "env", true
		}
		return "", false
	}
	s := mustParse(t, Options{Args: map[string]string{"a": "flag", "d": "flag"}, LookupEnv: env}, base, over)
	eq(t, svc(t, s, "s").RunCommand, "echo flag env overlay flag")
	eq(t, s.Args, map[string]string{"a": "flag", "b": "env", "c": "overlay", "d": "flag"})

	// --arg values are taken literally, never expanded.
	s = mustParse(t, Options{Args: map[string]string{"a": "${b}", "d": "x"}}, base)
	eq(t, s.Args["a"], "${b}")

	// A built-in gets a value when an ARG gives it one.
	s = mustParse(t, Options{Args: map[string]string{"PORT_OFFSET": "100"}}, src("Orchfile", "SERVICE s", "RUN echo ${PORT_OFFSET} ${ORCH_DATA}"))
	eq(t, svc(t, s, "s").RunCommand, "echo 100 ${ORCH_DATA}")

	// The environment is read with os.LookupEnv when LookupEnv is nil.
	t.Setenv("ORCH_ARG_fromenv", "os")
	s2, err := Parse([]Source{src("Orchfile", "ARG fromenv=file", "SERVICE s", "RUN ${fromenv}")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, s2.Services[0].RunCommand, "os")
}

// The JSON carries the always-present keys and omits unset optional ones.
func TestJSONShape(t *testing.T) {
	s := mustParse(t, Options{}, src("Orchfile", "SERVICE a", "RUN x"))
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version  string           `json:"version"`
		Args     *json.RawMessage `json:"args"`
		Services []map[string]any `json:"services"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	eq(t, doc.Version, "0.2.1")
	if doc.Args != nil {
		t.Errorf("empty args not omitted: %s", b)
	}
	var keys []string
	for k := range doc.Services[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	eq(t, keys, []string{"disabled", "logging", "mode", "name", "oneshot", "recreate", "resources", "restart", "run_command", "timeouts"})
	eq[any](t, doc.Services[0]["restart"], map[string]any{"policy": "no", "delay": "1s", "start_limit_burst": 5.0, "start_limit_interval": "10s"})
	eq[any](t, doc.Services[0]["timeouts"], map[string]any{"start": "90s", "stop": "10s"})

	// An empty Orchfile is a valid, empty project: services is [], not null.
	s = mustParse(t, Options{}, src("Orchfile", "# nothing yet"))
	b, _ = json.Marshal(s)
	eq(t, string(b), `{"version":"0.2.1","services":[]}`)
}

func TestParseFiles(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "Orchfile")
	if err := os.WriteFile(base, []byte("SERVICE a\nRUN x\nBAD y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.orch")
	_, err := ParseFiles([]string{base, missing}, Options{LookupEnv: noEnv})
	checkErrors(t, err, wantErr{missing, "cannot read Orchfile", ""})

	// Errors name the path as given.
	_, err = ParseFiles([]string{base}, Options{LookupEnv: noEnv})
	checkErrors(t, err, wantErr{base + ":3", `unknown directive "BAD"`, ""})

	if err := os.WriteFile(base, []byte("SERVICE a\nRUN x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := ParseFiles([]string{base}, Options{LookupEnv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, s.Services[0].RunCommand, "x")
}

func TestUTF8BOMAndUnicodeValues(t *testing.T) {
	s := mustParse(t, Options{}, Source{Name: "Orchfile", Data: []byte("\xEF\xBB\xBFSERVICE a\r\nRUN echo héllo ✓\r\n")})
	eq(t, s.Services[0].RunCommand, "echo héllo ✓")
}

func svc(t *testing.T, s *Spec, name string) *Service {
	t.Helper()
	v, ok := s.Service(name)
	if !ok {
		t.Fatalf("service %s missing", name)
	}
	return v
}

func eq[T any](t *testing.T, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

func TestOrchVersionAccepted(t *testing.T) {
	for _, v := range []string{"0.2.1", "0.2.0", "0.2"} {
		s := mustParse(t, Options{},
			src("Orchfile", "# header comment", "", "ORCH_VERSION "+v, "SERVICE a", "RUN x"),
			src("overlay.orch", "ORCH_VERSION "+v, "SERVICE a", "ENV A=1"))
		eq(t, s.Version, Version)
	}
}
