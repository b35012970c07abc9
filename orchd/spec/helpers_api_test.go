package spec

import (
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"512M", 512 << 20, true}, {"1K", 1024, true}, {"4G", 4 << 30, true}, {"123", 123, true}, {"0", 0, true},
		{"", 0, false}, {"M", 0, false}, {"1.5G", 0, false}, {"-1M", 0, false}, {"1m", 0, false}, {"1MB", 0, false},
		{"1T", 0, false}, {" 1M", 0, false}, {"9999999999G", 0, false}, {"99999999999999999999", 0, false},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseCPUQuota(t *testing.T) {
	cases := []struct {
		in   string
		want int
		ok   bool
	}{
		{"150%", 150, true}, {"1%", 1, true}, {"50%", 50, true}, {"400%", 400, true},
		{"0%", 0, false}, {"50", 0, false}, {"%", 0, false}, {"-5%", 0, false}, {"1.5%", 0, false}, {"99999999999%", 0, false},
	}
	for _, c := range cases {
		got, err := ParseCPUQuota(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseCPUQuota(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestValidServiceName(t *testing.T) {
	for _, ok := range []string{"a", "web", "db-migrate", "a1", "x-", strings.Repeat("a", 63)} {
		if !ValidServiceName(ok) {
			t.Errorf("ValidServiceName(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "A", "1a", "-a", "a_b", "a.b", "a b", "wéb", strings.Repeat("a", 64)} {
		if ValidServiceName(bad) {
			t.Errorf("ValidServiceName(%q) = true", bad)
		}
	}
}

func TestDuration(t *testing.T) {
	if got := Duration("5m").Std(0); got.Minutes() != 5 {
		t.Errorf("5m = %v", got)
	}
	if got := Duration("").Std(7); got != 7 {
		t.Errorf("empty = %v, want the default", got)
	}
}

func TestBuiltins(t *testing.T) {
	eq(t, Builtins(), []string{"ORCH_PROJECT", "ORCH_DATA", "ORCH_STATE_DIR", "ORCH_CONTAINERS_DIR", "SERVICE_NAME", "PORT_OFFSET", "CONTAINER_PREFIX"})
	b := Builtins()
	b[0] = "changed"
	if Builtins()[0] != "ORCH_PROJECT" {
		t.Error("Builtins returned shared storage")
	}
}

func TestExpandBuiltins(t *testing.T) {
	s := mustParse(t, Options{}, src("Orchfile",
		"SERVICE web",
		"FROM ${CONTAINER_PREFIX}img",
		"CMD run ${SERVICE_NAME} ${PORT_OFFSET}",
		"ENTRYPOINT ${ORCH_CONTAINERS_DIR}/entry.sh",
		"WORKDIR ${ORCH_PROJECT}/app",
		"ENV DATA=${ORCH_DATA}/web",
		"ENV LITERAL=$HOME",
		"ENV_FILE ${ORCH_PROJECT}/.env",
		"VOLUME ${ORCH_DATA}/web:/data",
		"HEALTHCHECK test -d ${ORCH_STATE_DIR}",
		"SERVICE cli",
		"RUN ${ORCH_PROJECT}/cli",
		"STOP ${ORCH_PROJECT}/cli stop",
		"RELOAD ${ORCH_PROJECT}/cli reload",
		"STDOUT ${ORCH_STATE_DIR}/logs/${SERVICE_NAME}.out",
		"STDERR ${ORCH_STATE_DIR}/logs/${SERVICE_NAME}.err",
		"USER ${CONTAINER_PREFIX}user",
	))
	vars := map[string]string{"ORCH_PROJECT": "/p", "ORCH_DATA": "/d", "ORCH_STATE_DIR": "/s", "ORCH_CONTAINERS_DIR": "/c", "CONTAINER_PREFIX": "x-", "HOME": "/root"}
	web := s.Services[0] // a copy, as callers ranging over Services have
	ExpandBuiltins(&web, vars)
	eq(t, web.Image, "x-img")
	eq(t, web.Cmd, "run web ${PORT_OFFSET}") // no value: kept
	eq(t, web.Entrypoint, "/c/entry.sh")
	eq(t, web.Workdir, "/p/app")
	eq(t, web.Env, map[string]string{"DATA": "/d/web", "LITERAL": "$HOME"})
	eq(t, web.EnvFiles, []string{"/p/.env"})
	eq(t, web.Volumes, []Volume{{Source: "/d/web", Destination: "/data"}})
	eq(t, web.Healthcheck, "test -d /s")
	// The Spec itself is untouched.
	eq(t, s.Services[0].Env["DATA"], "${ORCH_DATA}/web")
	eq(t, s.Services[0].Volumes[0].Source, "${ORCH_DATA}/web")
	eq(t, s.Services[0].EnvFiles[0], "${ORCH_PROJECT}/.env")

	cli := s.Services[1]
	ExpandBuiltins(&cli, vars)
	eq(t, cli.RunCommand+"|"+cli.StopCommand+"|"+cli.ReloadCommand+"|"+cli.User, "/p/cli|/p/cli stop|/p/cli reload|x-user")
	eq(t, cli.Logging, Logging{Stdout: "/s/logs/cli.out", Stderr: "/s/logs/cli.err"})

	// Only built-ins are replaced, even when vars holds other names.
	other := Service{Name: "o", RunCommand: "echo ${HOME} ${SERVICE_NAME}"}
	ExpandBuiltins(&other, vars)
	eq(t, other.RunCommand, "echo ${HOME} o")
	// vars may override SERVICE_NAME.
	ExpandBuiltins(&Service{}, nil)
	named := Service{Name: "o", RunCommand: "${SERVICE_NAME}"}
	ExpandBuiltins(&named, map[string]string{"SERVICE_NAME": "p-o"})
	eq(t, named.RunCommand, "p-o")
}

func TestTopoOrder(t *testing.T) {
	mk := func(name string, req, after []string) Service {
		return Service{Name: name, Requires: req, After: after}
	}
	order, err := TopoOrder([]Service{
		mk("web", []string{"db"}, []string{"cache"}),
		mk("cache", nil, nil),
		mk("migrate", []string{"db"}, nil),
		mk("db", nil, []string{"missing"}),
		mk("worker", nil, []string{"web", "migrate"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, order, []string{"cache", "db", "web", "migrate", "worker"})

	// File order when nothing depends on anything.
	order, err = TopoOrder([]Service{mk("c", nil, nil), mk("a", nil, nil), mk("b", nil, nil)})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, order, []string{"c", "a", "b"})

	_, err = TopoOrder([]Service{mk("x", nil, nil), mk("a", []string{"b"}, nil), mk("b", nil, []string{"c"}), mk("c", []string{"a"}, nil)})
	if err == nil || err.Error() != "dependency cycle: a -> b -> c -> a" {
		t.Errorf("cycle error = %v", err)
	}
	_, err = TopoOrder([]Service{mk("a", []string{"a"}, nil)})
	if err == nil || err.Error() != "dependency cycle: a -> a" {
		t.Errorf("self cycle error = %v", err)
	}
	order, err = TopoOrder(nil)
	if err != nil || len(order) != 0 {
		t.Errorf("empty: %v %v", order, err)
	}
}

func TestSuggest(t *testing.T) {
	for in, want := range map[string]string{
		"FORM": "FROM", "ENVFILE": "ENV_FILE", "REQUIRE": "REQUIRES", "TIMEOUTSTOP": "TIMEOUT_STOP",
		"healthchek": "HEALTHCHECK", "XYZZY": "", "EXPOSE": "", strings.Repeat("A", 40): "",
	} {
		if got := suggest(in); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidCPUs(t *testing.T) {
	for in, want := range map[string]bool{
		"2": true, "0.5": true, ".5": true, "2.": true, "10.25": true,
		"": false, ".": false, "-1": false, "+1": false, "1e3": false, "Inf": false, "NaN": false, "1.2.3": false, "0x1": false, " 1": false,
	} {
		if got := validCPUs(in); got != want {
			t.Errorf("validCPUs(%q) = %v, want %v", in, got, want)
		}
	}
}
