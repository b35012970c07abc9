package spec

import (
	"reflect"
	"testing"
)

// one parses a single-file Orchfile whose first service is "web" and returns it.
func one(t *testing.T, lines ...string) Service {
	t.Helper()
	s := mustParse(t, Options{}, src("Orchfile", append([]string{"SERVICE web"}, lines...)...))
	if len(s.Services) == 0 || s.Services[0].Name != "web" {
		t.Fatalf("service web missing: %+v", s.Services)
	}
	return s.Services[0]
}

func ptr[T any](v T) *T { return &v }

func TestDirectiveValues(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		want  func(*Service) // mutates the defaults into the expected service
	}{
		{"FROM", []string{"FROM alpine:3.20"}, func(s *Service) { s.Mode, s.Image = ModeContainer, "alpine:3.20" }},
		{"FROM oci-layout", []string{"FROM oci-layout:///var/lib/img:v1"}, func(s *Service) { s.Mode, s.Image = ModeContainer, "oci-layout:///var/lib/img:v1" }},
		{"RUN", []string{"RUN /bin/sh -c 'echo hi; sleep 1'"}, func(s *Service) { s.Mode, s.RunCommand = ModeHost, "/bin/sh -c 'echo hi; sleep 1'" }},
		{"RUN keeps # and extra spaces inside", []string{"RUN  echo a  # b  "}, func(s *Service) { s.Mode, s.RunCommand = ModeHost, "echo a  # b" }},
		{"ENTRYPOINT+CMD", []string{"FROM x", "ENTRYPOINT /bin/probe", "CMD --port 80"}, func(s *Service) {
			s.Mode, s.Image, s.Entrypoint, s.Cmd = ModeContainer, "x", "/bin/probe", "--port 80"
		}},
		{"PUBLISH host:container", []string{"FROM x", "PUBLISH 8080:80"}, func(s *Service) {
			s.Mode, s.Image, s.Publish = ModeContainer, "x", []Publish{{Host: 8080, Container: 80}}
		}},
		{"PUBLISH ipv4", []string{"FROM x", "PUBLISH 127.0.0.1:8080:80"}, func(s *Service) {
			s.Mode, s.Image, s.Publish = ModeContainer, "x", []Publish{{Host: 8080, Container: 80, HostIP: "127.0.0.1"}}
		}},
		{"PUBLISH ipv6", []string{"FROM x", "PUBLISH [::1]:8080:80", "PUBLISH [2001:db8::1]:1:65535"}, func(s *Service) {
			s.Mode, s.Image = ModeContainer, "x"
			s.Publish = []Publish{{Host: 8080, Container: 80, HostIP: "::1"}, {Host: 1, Container: 65535, HostIP: "2001:db8::1"}}
		}},
		{"PUBLISH hostname", []string{"FROM x", "PUBLISH localhost:8080:80", "PUBLISH db-1.example.com:5432:5432"}, func(s *Service) {
			s.Mode, s.Image = ModeContainer, "x"
			s.Publish = []Publish{{Host: 8080, Container: 80, HostIP: "localhost"}, {Host: 5432, Container: 5432, HostIP: "db-1.example.com"}}
		}},
		{"VOLUME named and path", []string{"FROM x", "VOLUME pg-data:/var/lib/pg", "VOLUME /srv/conf:/etc/conf", "VOLUME ${ORCH_DATA}/cache:/cache", "VOLUME ${ORCH_PROJECT}:/src"}, func(s *Service) {
			s.Mode, s.Image = ModeContainer, "x"
			s.Volumes = []Volume{
				{Source: "pg-data", Destination: "/var/lib/pg", IsNamed: true},
				{Source: "/srv/conf", Destination: "/etc/conf"},
				{Source: "${ORCH_DATA}/cache", Destination: "/cache"},
				{Source: "${ORCH_PROJECT}", Destination: "/src"},
			}
		}},
		{"VOLUME name and HEALTHCHECK URL using built-ins", []string{"FROM x", "VOLUME ${CONTAINER_PREFIX}data:/data", "HEALTHCHECK http://localhost:${PORT_OFFSET}/health"}, func(s *Service) {
			s.Mode, s.Image, s.Healthcheck = ModeContainer, "x", "http://localhost:${PORT_OFFSET}/health"
			s.Volumes = []Volume{{Source: "${CONTAINER_PREFIX}data", Destination: "/data", IsNamed: true}}
		}},
		{"USER STOP RELOAD", []string{"RUN app", "USER nobody", "STOP kill -TERM $MAINPID", "RELOAD kill -HUP $MAINPID"}, func(s *Service) {
			s.Mode, s.RunCommand, s.User, s.StopCommand, s.ReloadCommand = ModeHost, "app", "nobody", "kill -TERM $MAINPID", "kill -HUP $MAINPID"
		}},
		{"WORKDIR relative stays", []string{"RUN app", "WORKDIR backend/app"}, func(s *Service) { s.Mode, s.RunCommand, s.Workdir = ModeHost, "app", "backend/app" }},
		{"ENV", []string{"RUN app", "ENV A=1", "ENV _B=x=y", "ENV EMPTY=", "ENV SPACED=a b  c"}, func(s *Service) {
			s.Mode, s.RunCommand = ModeHost, "app"
			s.Env = map[string]string{"A": "1", "_B": "x=y", "EMPTY": "", "SPACED": "a b  c"}
		}},
		{"ENV_FILE dedup", []string{"RUN app", "ENV_FILE .env", "ENV_FILE ${ORCH_PROJECT}/.env.local", "ENV_FILE .env"}, func(s *Service) {
			s.Mode, s.RunCommand, s.EnvFiles = ModeHost, "app", []string{".env", "${ORCH_PROJECT}/.env.local"}
		}},
		{"REQUIRES AFTER lists", []string{"RUN app", "REQUIRES a b,c", "REQUIRES a", "AFTER x, y", "AFTER z", "SERVICE a", "RUN a", "SERVICE b", "RUN b", "SERVICE c", "RUN c"}, func(s *Service) {
			s.Mode, s.RunCommand, s.Requires, s.After = ModeHost, "app", []string{"a", "b", "c"}, []string{"x", "y", "z"}
		}},
		{"HEALTHCHECK url", []string{"RUN app", "HEALTHCHECK https://localhost:8443/health?x=1"}, func(s *Service) {
			s.Mode, s.RunCommand, s.Healthcheck = ModeHost, "app", "https://localhost:8443/health?x=1"
		}},
		{"HEALTHCHECK command", []string{"RUN app", "HEALTHCHECK pg_isready -h localhost"}, func(s *Service) {
			s.Mode, s.RunCommand, s.Healthcheck = ModeHost, "app", "pg_isready -h localhost"
		}},
		{"READINESS_TIMEOUT", []string{"RUN app", "READINESS_TIMEOUT 2m"}, func(s *Service) { s.Mode, s.RunCommand, s.ReadinessTimeout = ModeHost, "app", "2m" }},
		{"ONESHOT DISABLED true", []string{"RUN app", "ONESHOT true", "DISABLED true"}, func(s *Service) { s.Mode, s.RunCommand, s.Oneshot, s.Disabled = ModeHost, "app", true, true }},
		{"ONESHOT DISABLED false", []string{"RUN app", "ONESHOT false", "DISABLED false"}, func(s *Service) { s.Mode, s.RunCommand = ModeHost, "app" }},
		{"RECREATE always", []string{"FROM x", "RECREATE always"}, func(s *Service) { s.Mode, s.Image, s.Recreate = ModeContainer, "x", "always" }},
		{"RECREATE never", []string{"FROM x", "RECREATE never"}, func(s *Service) { s.Mode, s.Image = ModeContainer, "x" }},
		{"RESTART on-failure", []string{"RUN app", "RESTART on-failure"}, func(s *Service) { s.Mode, s.RunCommand, s.Restart.Policy = ModeHost, "app", RestartOnFailure }},
		{"RESTART always + limits", []string{"RUN app", "RESTART always", "RESTART_DELAY 5s", "START_LIMIT_BURST 3", "START_LIMIT_INTERVAL 1m"}, func(s *Service) {
			s.Mode, s.RunCommand = ModeHost, "app"
			s.Restart = Restart{Policy: RestartAlways, Delay: "5s", StartLimitBurst: 3, StartLimitInterval: "1m"}
		}},
		{"RESTART no", []string{"RUN app", "RESTART no"}, func(s *Service) { s.Mode, s.RunCommand = ModeHost, "app" }},
		{"TIMEOUTS", []string{"RUN app", "TIMEOUT_START 30s", "TIMEOUT_STOP 0s"}, func(s *Service) {
			s.Mode, s.RunCommand, s.Timeouts = ModeHost, "app", Timeouts{Start: "30s", Stop: "0s"}
		}},
		{"resources", []string{"RUN app", "MEMORY 512M", "CPUS 0.5", "CPU_QUOTA 150%", "LIMIT_NOFILE 65536", "LIMIT_NPROC 4096", "TASKS_MAX 100", "IO_WEIGHT 10"}, func(s *Service) {
			s.Mode, s.RunCommand = ModeHost, "app"
			s.Resources = Resources{Memory: "512M", CPUs: ptr(0.5), CPUQuota: "150%", LimitNofile: 65536, LimitNproc: 4096, TasksMax: 100, IOWeight: 10}
		}},
		{"MEMORY plain bytes, CPUS integer, IO_WEIGHT 1000", []string{"RUN app", "MEMORY 1048576", "CPUS 2", "IO_WEIGHT 1000"}, func(s *Service) {
			s.Mode, s.RunCommand = ModeHost, "app"
			s.Resources = Resources{Memory: "1048576", CPUs: ptr(2.0), IOWeight: 1000}
		}},
		{"STDOUT STDERR keep SERVICE_NAME", []string{"RUN app", "STDOUT /var/log/${SERVICE_NAME}.out", "STDERR /var/log/${SERVICE_NAME}.err"}, func(s *Service) {
			s.Mode, s.RunCommand, s.Logging = ModeHost, "app", Logging{Stdout: "/var/log/${SERVICE_NAME}.out", Stderr: "/var/log/${SERVICE_NAME}.err"}
		}},
		{"CLEAR in a base is harmless", []string{"RUN app", "CLEAR ENV", "ENV A=1"}, func(s *Service) { s.Mode, s.RunCommand, s.Env = ModeHost, "app", map[string]string{"A": "1"} }},
		{"leading whitespace, tabs, comments, CRLF", []string{"\t RUN\tapp arg\r", "   # comment", "", "\tENV\t A=1 \r"}, func(s *Service) {
			s.Mode, s.RunCommand, s.Env = ModeHost, "app arg", map[string]string{"A": "1"}
		}},
		{"built-ins verbatim", []string{"RUN echo ${ORCH_PROJECT} ${ORCH_DATA} ${ORCH_STATE_DIR} ${ORCH_CONTAINERS_DIR} ${SERVICE_NAME} ${PORT_OFFSET} ${CONTAINER_PREFIX}"}, func(s *Service) {
			s.Mode, s.RunCommand = ModeHost, "echo ${ORCH_PROJECT} ${ORCH_DATA} ${ORCH_STATE_DIR} ${ORCH_CONTAINERS_DIR} ${SERVICE_NAME} ${PORT_OFFSET} ${CONTAINER_PREFIX}"
		}},
		{"non-variable dollar forms stay", []string{"RUN echo $HOME ${} ${1x} ${a-b} ${unterminated"}, func(s *Service) {
			s.Mode, s.RunCommand = ModeHost, "echo $HOME ${} ${1x} ${a-b} ${unterminated"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := one(t, tc.lines...)
			want := Service{
				Name: "web", Recreate: "never",
				Restart:  Restart{Policy: RestartNo, Delay: DefaultRestartDelay, StartLimitBurst: DefaultStartLimitBurst, StartLimitInterval: DefaultStartLimitInterval},
				Timeouts: Timeouts{Start: DefaultTimeoutStart, Stop: DefaultTimeoutStop},
			}
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// Every scalar directive has a slot, and every slot is a scalar directive.
func TestScalarSlots(t *testing.T) {
	n := 0
	for kw, d := range directives {
		if d.kind != kindScalar {
			continue
		}
		n++
		if slot, ok := scalarSlot[kw]; !ok || scalarNames[slot] != kw {
			t.Errorf("scalar %s has no slot", kw)
		}
	}
	if n != len(scalarNames) || len(scalarSlot) != n {
		t.Errorf("%d scalar directives, %d names, %d slots", n, len(scalarNames), len(scalarSlot))
	}
}
