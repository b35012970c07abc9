package spec

import (
	"fmt"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	F := func(lines ...string) []Source { return []Source{src("Orchfile", lines...)} }
	cases := []struct {
		name    string
		sources []Source
		opts    Options
		want    []wantErr
	}{
		// Lexical.
		{"unknown directive with typo hint", F("SERVICE a", "RUN x", "FORM x"), Options{},
			[]wantErr{{"Orchfile:3", `unknown directive "FORM"`, "did you mean FROM?"}}},
		{"unknown directive typo ENVFILE", F("SERVICE a", "RUN x", "ENVFILE .env"), Options{},
			[]wantErr{{"Orchfile:3", `unknown directive "ENVFILE"`, "did you mean ENV_FILE?"}}},
		{"unknown directive far from all", F("SERVICE a", "RUN x", "FROBNICATE x"), Options{},
			[]wantErr{{"Orchfile:3", `unknown directive "FROBNICATE"`, "-"}}},
		{"lowercase directive", F("SERVICE a", "run x"), Options{},
			[]wantErr{{"Orchfile:2", `unknown directive "run"`, "directives are UPPERCASE: write RUN"}}},
		{"lowercase typo", F("SERVICE a", "RUN x", "requries a"), Options{},
			[]wantErr{{"Orchfile:3", `unknown directive "requries"`, "did you mean REQUIRES? (directives are UPPERCASE)"}}},
		{"empty value", F("SERVICE a", "RUN x", "WORKDIR   \t"), Options{},
			[]wantErr{{"Orchfile:3", "WORKDIR needs a value", "write WORKDIR path"}}},
		{"empty value after expansion", F("ARG e=", "SERVICE a", "RUN ${e}"), Options{},
			[]wantErr{{"Orchfile:3", "RUN is empty after expanding variables", "write RUN command"}}},
		{"NUL byte", []Source{{Name: "Orchfile", Data: []byte("SERVICE a\nRUN x\x00y\nRUN z\n")}}, Options{},
			[]wantErr{{"Orchfile:2", "NUL byte", "UTF-8"}}},
		{"invalid UTF-8", []Source{{Name: "Orchfile", Data: []byte("SERVICE a\nRUN x\nENV A=\xff\xfe\n")}}, Options{},
			[]wantErr{{"Orchfile:3", "invalid UTF-8", "UTF-8"}}},
		{"directive outside SERVICE", F("ARG a=1", "FROM x", "SERVICE s", "RUN y"), Options{},
			[]wantErr{{"Orchfile:2", "FROM outside a SERVICE block", "SERVICE <name>"}}},

		// ORCH_VERSION.
		{"ORCH_VERSION unsupported", F("ORCH_VERSION 0.3.0", "SERVICE a", "RUN x"), Options{},
			[]wantErr{{"Orchfile:1", `unsupported ORCH_VERSION "0.3.0"`, "0.2.1"}}},
		{"ORCH_VERSION not first", F("# c", "ARG a=1", "ORCH_VERSION 0.2.1", "SERVICE a", "RUN x"), Options{},
			[]wantErr{{"Orchfile:3", "ORCH_VERSION must be the first directive", "first line"}}},
		{"ORCH_VERSION after SERVICE", F("SERVICE a", "RUN x", "ORCH_VERSION 0.2.1"), Options{},
			[]wantErr{{"Orchfile:3", "ORCH_VERSION must be the first directive", ""}}},
		{"ORCH_VERSION twice", F("ORCH_VERSION 0.2.1", "ORCH_VERSION 0.2.1", "SERVICE a", "RUN x"), Options{},
			[]wantErr{{"Orchfile:2", "ORCH_VERSION must be the first directive", ""}}},

		// ARG and variables.
		{"ARG invalid name", F("ARG 1x=2", "ARG a-b=1", "SERVICE a", "RUN x"), Options{},
			[]wantErr{{"Orchfile:1", `invalid ARG name "1x"`, "letter"}, {"Orchfile:2", `invalid ARG name "a-b"`, ""}}},
		{"ARG without default or override", F("ARG token", "SERVICE a", "RUN x ${token}"), Options{},
			[]wantErr{{"Orchfile:1", "ARG token has no value", "--arg token="}}},
		{"ARG self reference", F("ARG a=${b}", "ARG b=${a}", "SERVICE s", "RUN ${a}"), Options{},
			[]wantErr{{"Orchfile:2", "ARG b refers to itself through ${a}", ""}}},
		{"ARG default with undefined var", F("ARG a=${nope}", "SERVICE s", "RUN ${a}"), Options{},
			[]wantErr{{"Orchfile:1", "undefined variable ${nope}", "declare ARG nope=... or pass --arg nope=..."}}},
		{"undefined variable", F("SERVICE a", "RUN echo ${name} ${name} ${other}"), Options{},
			[]wantErr{{"Orchfile:2", "undefined variable ${name}", "declare ARG name=... or pass --arg name=..."},
				{"Orchfile:2", "undefined variable ${other}", "declare ARG other=..."}}},
		{"invalid --arg name", F("SERVICE a", "RUN x"), Options{Args: map[string]string{"bad-name": "1"}},
			[]wantErr{{"--arg", `invalid ARG name "bad-name"`, ""}}},

		// SERVICE.
		{"bad service names", F("SERVICE Web", "RUN x", "SERVICE 1a", "RUN x", "SERVICE "+strings.Repeat("a", 64), "RUN x", "SERVICE a_b", "RUN x"), Options{},
			[]wantErr{{"Orchfile:1", `invalid service name "Web"`, "lowercase"}, {"Orchfile:3", `invalid service name "1a"`, ""},
				{"Orchfile:5", "invalid service name", ""}, {"Orchfile:7", `invalid service name "a_b"`, ""}}},
		{"SERVICE without a name still opens a block", F("SERVICE a", "RUN x", "SERVICE", "RUN y", "USER u"), Options{},
			[]wantErr{{"Orchfile:3", "SERVICE needs a value", "write SERVICE name"}}},
		{"lowercase service still opens a block", F("service a", "RUN x", "SERVICE b", "RUN y"), Options{},
			[]wantErr{{"Orchfile:1", `unknown directive "service"`, "write SERVICE"}}},
		{"duplicate SERVICE in one file", F("SERVICE a", "RUN x", "SERVICE a", "RUN y"), Options{},
			[]wantErr{{"Orchfile:3", "duplicate SERVICE a (first defined at Orchfile:1)", "overlay"}}},
		{"duplicate scalar in a block", F("SERVICE a", "RUN x", "RUN y"), Options{},
			[]wantErr{{"Orchfile:3", "duplicate RUN in service a (first at Orchfile:2)", "once per SERVICE block"}}},
		{"FROM with space", F("SERVICE a", "FROM alpine latest"), Options{},
			[]wantErr{{"Orchfile:2", "FROM: an image reference must not contain spaces", ""}}},
		{"USER with space", F("SERVICE a", "RUN x", "USER a b"), Options{},
			[]wantErr{{"Orchfile:3", "USER: a user name must not contain spaces", ""}}},

		// ENV.
		{"ENV without =", F("SERVICE a", "RUN x", "ENV FOO"), Options{},
			[]wantErr{{"Orchfile:3", `ENV: missing '=' in "FOO"`, "KEY=value"}}},
		{"ENV bad keys", F("SERVICE a", "RUN x", "ENV 1A=b", "ENV A B=c", "ENV =v", "ENV A-B=1"), Options{},
			[]wantErr{{"Orchfile:3", `ENV: invalid key "1A"`, ""}, {"Orchfile:4", `ENV: invalid key "A B"`, ""},
				{"Orchfile:5", `ENV: invalid key ""`, ""}, {"Orchfile:6", `ENV: invalid key "A-B"`, ""}}},
		{"ENV duplicate key in block", F("SERVICE a", "RUN x", "ENV A=1", "ENV A=2"), Options{},
			[]wantErr{{"Orchfile:4", "duplicate ENV A in service a (first at Orchfile:3)", ""}}},

		// PUBLISH.
		{"PUBLISH malformed", F("SERVICE a", "FROM x",
			"PUBLISH 80", "PUBLISH 0:80", "PUBLISH 8080:65536", "PUBLISH a:b", "PUBLISH ::1:8080:80", "PUBLISH [::1:8080:80",
			"PUBLISH [127.0.0.1]:1:2", "PUBLISH 300.1.1.1:1:2", "PUBLISH bad_host:1:2", "PUBLISH 1:2/udp", "PUBLISH :1:2", "PUBLISH -1:2", "PUBLISH [::1]:1"), Options{},
			[]wantErr{
				{"Orchfile:3", `PUBLISH "80": want [addr:]host:container`, "8080:80"},
				{"Orchfile:4", "host port 0 is out of range 1-65535", ""},
				{"Orchfile:5", "container port 65536 is out of range", ""},
				{"Orchfile:6", `host port "a" is not a number`, ""},
				{"Orchfile:7", "IPv6 address must be in brackets", ""},
				{"Orchfile:8", "missing ]", ""},
				{"Orchfile:9", `"127.0.0.1" is not an IPv6 address`, ""},
				{"Orchfile:10", `address "300.1.1.1" is not a valid IPv4 address`, ""},
				{"Orchfile:11", `address "bad_host" is not an IPv4 address or hostname`, ""},
				{"Orchfile:12", `container port "2/udp" is not a number`, ""},
				{"Orchfile:13", "empty address", ""},
				{"Orchfile:14", `host port "-1" is not a number`, ""},
				{"Orchfile:15", "want [addr:]host:container", ""},
			}},
		{"PUBLISH duplicate host binding", F("SERVICE a", "FROM x", "PUBLISH 8080:80", "PUBLISH 127.0.0.1:8080:80", "PUBLISH 8080:81", "PUBLISH [::1]:9:1", "PUBLISH [::1]:9:2"), Options{},
			[]wantErr{{"Orchfile:5", "duplicate PUBLISH of host port 8080 in service a (first at Orchfile:3)", "once per SERVICE block"},
				{"Orchfile:7", "duplicate PUBLISH of host port [::1]:9 in service a (first at Orchfile:6)", ""}}},
		{"PUBLISH built-in has no value at parse", F("SERVICE a", "FROM x", "PUBLISH ${PORT_OFFSET}:80"), Options{},
			[]wantErr{{"Orchfile:3", "PUBLISH", "built-in variables are filled at run time"}}},

		// VOLUME.
		{"VOLUME malformed", F("SERVICE a", "FROM x",
			"VOLUME data", "VOLUME data:rel", "VOLUME ./data:/d", "VOLUME -x:/d", "VOLUME :/d", "VOLUME a:/d:ro", "VOLUME a:/", "VOLUME ${PORT_OFFSET}/x:/p"), Options{},
			[]wantErr{
				{"Orchfile:3", "want source:destination", "VOLUME name:/path"},
				{"Orchfile:4", `destination "rel" must be an absolute path`, ""},
				{"Orchfile:5", `source "./data" is neither an absolute path nor a volume name`, "${ORCH_PROJECT}"},
				{"Orchfile:6", `source "-x" is neither`, ""},
				{"Orchfile:7", "empty source", ""},
				{"Orchfile:8", "mount options are not supported", ""},
				{"Orchfile:9", "destination must not be /", ""},
				{"Orchfile:10", `source "${PORT_OFFSET}/x" is neither`, ""},
			}},
		{"VOLUME duplicate destination", F("SERVICE a", "FROM x", "VOLUME a:/data", "VOLUME /b:/data/"), Options{},
			[]wantErr{{"Orchfile:4", "duplicate VOLUME destination /data/ in service a (first at Orchfile:3)", ""}}},

		// REQUIRES / AFTER.
		{"REQUIRES bad name", F("SERVICE a", "RUN x", "REQUIRES B_1"), Options{},
			[]wantErr{{"Orchfile:3", `REQUIRES: invalid service name "B_1"`, ""}}},
		{"AFTER bad name", F("SERVICE a", "RUN x", "AFTER ok Bad"), Options{},
			[]wantErr{{"Orchfile:3", `AFTER: invalid service name "Bad"`, ""}}},
		{"REQUIRES undefined", F("SERVICE a", "RUN x", "REQUIRES b", "AFTER missing-ok"), Options{},
			[]wantErr{{"Orchfile:3", "service a REQUIRES undefined service b", "define SERVICE b, or use AFTER"}}},
		{"REQUIRES typo", F("SERVICE postgres", "RUN x", "SERVICE web", "RUN y", "REQUIRES postgress"), Options{},
			[]wantErr{{"Orchfile:5", "service web REQUIRES undefined service postgress", "did you mean postgres? Otherwise define SERVICE postgress"}}},

		// Scalar values.
		{"HEALTHCHECK bad url", F("SERVICE a", "RUN x", "HEALTHCHECK http://"), Options{},
			[]wantErr{{"Orchfile:3", `HEALTHCHECK: invalid HEALTHCHECK URL "http://"`, "http://localhost:8080/health"}}},
		{"durations", F("SERVICE a", "RUN x", "READINESS_TIMEOUT 30", "RESTART_DELAY 1d", "START_LIMIT_INTERVAL -5s", "TIMEOUT_START 1.5", "TIMEOUT_STOP s"), Options{},
			[]wantErr{
				{"Orchfile:3", `READINESS_TIMEOUT: invalid duration "30"`, "number with a unit"},
				{"Orchfile:4", `RESTART_DELAY: invalid duration "1d"`, ""},
				{"Orchfile:5", `START_LIMIT_INTERVAL: invalid duration "-5s"`, ""},
				{"Orchfile:6", `TIMEOUT_START: invalid duration "1.5"`, ""},
				{"Orchfile:7", `TIMEOUT_STOP: invalid duration "s"`, ""},
			}},
		{"booleans", F("SERVICE a", "RUN x", "ONESHOT yes", "DISABLED True"), Options{},
			[]wantErr{{"Orchfile:3", `ONESHOT: invalid boolean "yes"`, "true or false"}, {"Orchfile:4", `DISABLED: invalid boolean "True"`, ""}}},
		{"RESTART values", F("SERVICE a", "RUN x", "RESTART on_failure"), Options{},
			[]wantErr{{"Orchfile:3", `RESTART: invalid value "on_failure"`, "did you mean on-failure?"}}},
		{"RESTART unknown", F("SERVICE a", "RUN x", "RESTART sometimes"), Options{},
			[]wantErr{{"Orchfile:3", `RESTART: invalid value "sometimes"`, "one of: no, always, on-failure"}}},
		{"RECREATE values", F("SERVICE a", "FROM x", "RECREATE sometimes"), Options{},
			[]wantErr{{"Orchfile:3", `RECREATE: invalid value "sometimes"`, "one of: always, never"}}},
		{"START_LIMIT_BURST", F("SERVICE a", "RUN x", "START_LIMIT_BURST 0"), Options{},
			[]wantErr{{"Orchfile:3", `START_LIMIT_BURST: invalid value "0": want a positive integer`, ""}}},
		{"MEMORY", F("SERVICE a", "RUN x", "MEMORY 512m"), Options{},
			[]wantErr{{"Orchfile:3", `MEMORY: invalid size "512m"`, "K, M or G (uppercase"}}},
		{"MEMORY zero", F("SERVICE a", "RUN x", "MEMORY 0G"), Options{},
			[]wantErr{{"Orchfile:3", `MEMORY: invalid size "0G": must be greater than 0`, ""}}},
		{"MEMORY overflow", F("SERVICE a", "RUN x", "MEMORY 99999999999999G"), Options{},
			[]wantErr{{"Orchfile:3", `MEMORY: invalid size "99999999999999G"`, ""}}},
		{"MEMORY other forms", F("SERVICE a", "RUN x", "MEMORY 1.5G"), Options{},
			[]wantErr{{"Orchfile:3", `MEMORY: invalid size "1.5G"`, ""}}},
		{"CPUS", F("SERVICE a", "RUN x", "CPUS 0"), Options{},
			[]wantErr{{"Orchfile:3", `invalid CPUS "0": want a number greater than 0`, "CPUS 0.5"}}},
		{"CPUS forms", F("SERVICE a", "RUN x", "CPUS -1"), Options{},
			[]wantErr{{"Orchfile:3", `invalid CPUS "-1"`, ""}}},
		{"CPUS inf", F("SERVICE a", "RUN x", "CPUS Inf"), Options{},
			[]wantErr{{"Orchfile:3", `invalid CPUS "Inf"`, ""}}},
		{"CPU_QUOTA", F("SERVICE a", "RUN x", "CPU_QUOTA 50"), Options{},
			[]wantErr{{"Orchfile:3", `invalid CPU_QUOTA "50"`, "CPU_QUOTA 150%"}}},
		{"CPU_QUOTA zero", F("SERVICE a", "RUN x", "CPU_QUOTA 0%"), Options{},
			[]wantErr{{"Orchfile:3", `invalid CPU_QUOTA "0%"`, ""}}},
		{"limits", F("SERVICE a", "RUN x", "LIMIT_NOFILE 0", "LIMIT_NPROC -1", "TASKS_MAX many"), Options{},
			[]wantErr{
				{"Orchfile:3", `LIMIT_NOFILE: invalid value "0"`, ""},
				{"Orchfile:4", `LIMIT_NPROC: invalid value "-1"`, ""},
				{"Orchfile:5", `TASKS_MAX: invalid value "many"`, ""},
			}},
		{"IO_WEIGHT range", F("SERVICE a", "RUN x", "IO_WEIGHT 9"), Options{},
			[]wantErr{{"Orchfile:3", `invalid IO_WEIGHT "9": want an integer from 10 to 1000`, ""}}},
		{"IO_WEIGHT high", F("SERVICE a", "RUN x", "IO_WEIGHT 1001"), Options{},
			[]wantErr{{"Orchfile:3", `invalid IO_WEIGHT "1001"`, ""}}},

		// CLEAR.
		{"CLEAR scalar", F("SERVICE a", "RUN x", "CLEAR MEMORY"), Options{},
			[]wantErr{{"Orchfile:3", `cannot CLEAR "MEMORY"`, "CLEAR applies to ENV, ENV_FILE, PUBLISH, VOLUME, REQUIRES or AFTER"}}},
		{"CLEAR lowercase", F("SERVICE a", "RUN x", "CLEAR env"), Options{},
			[]wantErr{{"Orchfile:3", `cannot CLEAR "env"`, ""}}},

		// C1-C4.
		{"C1 neither", F("SERVICE a", "ENV A=1"), Options{},
			[]wantErr{{"Orchfile:1", "service a has neither FROM nor RUN", "add FROM image"}}},
		{"C1 both", F("SERVICE a", "FROM x", "RUN y"), Options{},
			[]wantErr{{"Orchfile:3", "service a has both FROM (at Orchfile:2) and RUN (at Orchfile:3)", "keep one"}}},
		{"C1 neither, only in overlay", []Source{src("Orchfile", "SERVICE a", "RUN x"), src("over.orch", "SERVICE b", "  ENV A=1")}, Options{},
			[]wantErr{{"over.orch:1", "service b has neither FROM nor RUN", ""}}},
		{"C2 container-only with RUN", F("SERVICE a", "RUN x", "ENTRYPOINT /e", "CMD c", "PUBLISH 1:2", "VOLUME v:/v"), Options{},
			[]wantErr{
				{"Orchfile:3", "ENTRYPOINT is only valid with FROM: service a is a host service (RUN at Orchfile:2)", "remove ENTRYPOINT"},
				{"Orchfile:4", "CMD is only valid with FROM", ""},
				{"Orchfile:5", "PUBLISH is only valid with FROM", ""},
				{"Orchfile:6", "VOLUME is only valid with FROM", ""},
			}},
		{"C3 host-only with FROM", F("SERVICE a", "FROM x", "USER u", "STOP s", "RELOAD r"), Options{},
			[]wantErr{
				{"Orchfile:3", "USER is only valid with RUN: service a is a container service (FROM at Orchfile:2)", "remove USER"},
				{"Orchfile:4", "STOP is only valid with RUN", ""},
				{"Orchfile:5", "RELOAD is only valid with RUN", ""},
			}},
		{"C2 after merge", []Source{src("Orchfile", "SERVICE a", "RUN x"), src("over.orch", "SERVICE a", "CMD c")}, Options{},
			[]wantErr{{"over.orch:2", "CMD is only valid with FROM: service a is a host service (RUN at Orchfile:2)", ""}}},
		{"mode switch keeps the overlay's own host-only directives, which then violate C3",
			[]Source{src("Orchfile", "SERVICE a", "RUN x", "USER base"), src("over.orch", "SERVICE a", "FROM img", "USER over")}, Options{},
			[]wantErr{{"over.orch:3", "USER is only valid with RUN: service a is a container service (FROM at over.orch:2)", ""}}},
		{"overlay with both FROM and RUN on a RUN service",
			[]Source{src("Orchfile", "SERVICE a", "RUN x"), src("over.orch", "SERVICE a", "FROM img", "RUN y")}, Options{},
			[]wantErr{{"over.orch:3", "service a has both FROM (at over.orch:2) and RUN (at over.orch:3)", ""}}},
		{"C4 two-cycle", F("SERVICE a", "RUN x", "REQUIRES b", "SERVICE b", "RUN y", "AFTER a"), Options{},
			[]wantErr{{"Orchfile:6", "dependency cycle: a -> b -> a", "must not form a cycle"}}},
		{"C4 self", F("SERVICE a", "RUN x", "AFTER a"), Options{},
			[]wantErr{{"Orchfile:3", "dependency cycle: a -> a", ""}}},
		{"C4 three-cycle across files", []Source{
			src("Orchfile", "SERVICE a", "RUN x", "REQUIRES b", "SERVICE b", "RUN y", "REQUIRES c", "SERVICE c", "RUN z"),
			src("over.orch", "SERVICE c", "AFTER a")}, Options{},
			[]wantErr{{"over.orch:2", "dependency cycle: a -> b -> c -> a", ""}}},

		// Every error is reported, sorted by file (given order) then line.
		{"all errors sorted", []Source{
			src("z-base", "SERVICE a", "RUN x", "MEMORY 1X", "REQUIRES nope", "CPUS x"),
			src("a-overlay", "SERVICE b", "BOGUS 1", "FROM y", "USER u"),
		}, Options{},
			[]wantErr{
				{"z-base:3", "MEMORY", ""},
				{"z-base:4", "REQUIRES undefined service nope", ""},
				{"z-base:5", "CPUS", ""},
				{"a-overlay:2", `unknown directive "BOGUS"`, ""},
				{"a-overlay:4", "USER is only valid with RUN", ""},
			}},
		{"no sources", nil, Options{}, []wantErr{{"orchd", "no Orchfile given", ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.LookupEnv == nil {
				tc.opts.LookupEnv = noEnv
			}
			s, err := Parse(tc.sources, tc.opts)
			if s != nil {
				t.Errorf("got a Spec together with errors")
			}
			checkErrors(t, err, tc.want...)
		})
	}
}

// A one-letter name is not "corrected" to another one-letter name.
func TestRequiresNoSillySuggestion(t *testing.T) {
	_, err := Parse([]Source{src("Orchfile", "SERVICE a", "RUN x", "REQUIRES b")}, Options{LookupEnv: noEnv})
	if h := errorsOf(t, err)[0].Hint; strings.Contains(h, "did you mean") {
		t.Errorf("hint = %q", h)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "Orchfile", Line: 3, Msg: "bad", Hint: "fix it"}
	if got, want := e.Error(), "Orchfile:3: bad\n  hint: fix it"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	e = &Error{File: "Orchfile", Msg: "cannot read"}
	if got, want := e.Error(), "Orchfile: cannot read"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	l := ErrorList{{File: "a", Line: 1, Msg: "x"}, {File: "a", Line: 2, Msg: "y", Hint: "h"}}
	if got, want := l.Error(), "a:1: x\na:2: y\n  hint: h"; got != want {
		t.Errorf("ErrorList.Error() = %q, want %q", got, want)
	}
}

// ARGs that double at every level must not exhaust memory.
func TestExpansionBomb(t *testing.T) {
	lines := []string{"ARG a0=" + strings.Repeat("x", 1024)}
	for i := 1; i <= 40; i++ {
		lines = append(lines, fmt.Sprintf("ARG a%d=${a%d}${a%d}", i, i-1, i-1))
	}
	lines = append(lines, "SERVICE s", "RUN echo ${a40}", "ENV A=${a20}${a20}${a20}")
	_, err := Parse([]Source{src("Orchfile", lines...)}, Options{LookupEnv: noEnv})
	list := errorsOf(t, err)
	if !strings.Contains(list[0].Msg, "after expanding variables") {
		t.Errorf("first error = %v", list[0])
	}
}

// A 10 MB line parses (no fixed line-length limit) and an error on it stays short.
func TestHugeLine(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	_, err := Parse([]Source{src("Orchfile", "SERVICE a", "RUN x", "MEMORY "+big, big)}, Options{LookupEnv: noEnv})
	checkErrors(t, err, wantErr{"Orchfile:3", "MEMORY: invalid size", ""}, wantErr{"Orchfile:4", "unknown directive", "-"})
	if n := len(err.Error()); n > 1000 {
		t.Errorf("error text is %d bytes; values must be shortened", n)
	}
}
