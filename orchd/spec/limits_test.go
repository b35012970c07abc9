package spec

import (
	"errors"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// Values a program cannot be given (Linux: MAX_ARG_STRLEN per string, ARG_MAX
// in total) are refused at their line, with a hint, and the message stays short.
func TestArgumentLimits(t *testing.T) {
	F := func(lines ...string) []Source { return []Source{src("Orchfile", lines...)} }
	max := strings.Repeat("x", MaxArgString)
	over := max + "x"
	chunk := strings.Repeat("y", 100<<10) // fits one string; eleven exceed the total
	var many []string
	for i := 0; i < 11; i++ {
		many = append(many, "ENV K"+string(rune('A'+i))+"="+chunk)
	}
	cases := []struct {
		name    string
		sources []Source
		want    []wantErr
	}{
		{"RUN of 10 MB", F("SERVICE a", "RUN echo "+strings.Repeat("x", 10<<20)),
			[]wantErr{{"Orchfile:2", "RUN: the command is 10485765 bytes; it is passed to /bin/sh -c as one argument, and Linux refuses an argument longer than 131071 bytes (MAX_ARG_STRLEN)", largeValueHint}}},
		{"RUN one byte over", F("SERVICE a", "RUN "+over),
			[]wantErr{{"Orchfile:2", "RUN: the command is 131072 bytes", "RUN a script file"}}},
		{"STOP over", F("SERVICE a", "RUN x", "STOP "+over),
			[]wantErr{{"Orchfile:3", "STOP: the command is 131072 bytes", ""}}},
		{"HEALTHCHECK over", F("SERVICE a", "RUN x", "HEALTHCHECK "+over),
			[]wantErr{{"Orchfile:3", "HEALTHCHECK: the command is 131072 bytes", ""}}},
		{"CMD with one word over", F("SERVICE a", "FROM img", "CMD echo "+over),
			[]wantErr{{"Orchfile:3", "CMD: argument 2 is 131072 bytes; Linux refuses an argument longer than 131071 bytes (MAX_ARG_STRLEN)", ""}}},
		{"ENTRYPOINT quoted word over", F("SERVICE a", "FROM img", `ENTRYPOINT sh -c "`+strings.Repeat("a b ", 40000)+`"`),
			[]wantErr{{"Orchfile:3", "ENTRYPOINT: argument 3 is 160000 bytes", ""}}},
		{"ENV over", F("SERVICE a", "RUN x", "ENV BIG="+max),
			[]wantErr{{"Orchfile:3", "ENV BIG is 131075 bytes as KEY=value; Linux refuses an environment string longer than 131071 bytes (MAX_ARG_STRLEN)", "pass a path in ENV"}}},
		{"ENV from an overlay over", []Source{src("Orchfile", "SERVICE a", "RUN x"), src("big.orch", "SERVICE a", "ENV A="+over)},
			[]wantErr{{"big.orch:2", "ENV A is 131074 bytes", ""}}},
		{"command and ENV together over ARG_MAX", F(append([]string{"SERVICE a", "RUN x"}, many...)...),
			[]wantErr{{"Orchfile:3", "service a: its command and ENV come to 1126569 bytes, more than the 1048576 a program can be given (ARG_MAX); the largest is ENV KA (102412 bytes)", largeValueHint}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.sources, Options{LookupEnv: noEnv})
			checkErrors(t, err, c.want...)
			if n := len(err.Error()); n > 1000 {
				t.Errorf("error text is %d bytes; values must be shortened", n)
			}
		})
	}
}

// Values at the limits still parse: a limit refuses only what cannot run.
func TestArgumentLimitsAllowWhatFits(t *testing.T) {
	word := strings.Repeat("w", MaxArgString)
	s := mustParse(t, Options{}, src("Orchfile",
		"SERVICE a", "RUN "+word, "ENV K="+word[:MaxArgString-2],
		"SERVICE b", "FROM img", "CMD "+word+" "+word, // long CMD, each word fits
	))
	if len(s.Services[0].RunCommand) != MaxArgString || len(s.Services[1].Cmd) != 2*MaxArgString+1 {
		t.Errorf("values at the limit changed: RUN %d, CMD %d", len(s.Services[0].RunCommand), len(s.Services[1].Cmd))
	}
}

// The limit is the kernel's: an argument of MaxArgString bytes runs, one byte
// more fails with E2BIG, and so does an environment string.
func TestMaxArgStringIsTheKernels(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("MAX_ARG_STRLEN is Linux's; other systems have only a total limit")
	}
	run := func(arg, env string) error {
		cmd := exec.Command("/bin/true", arg)
		cmd.Env = []string{env}
		return cmd.Run()
	}
	fits := strings.Repeat("x", MaxArgString)
	if err := run(fits, "K="+fits[:MaxArgString-2]); err != nil {
		t.Fatalf("an argument and an env string of %d bytes: %v", MaxArgString, err)
	}
	if err := run(fits+"x", "K=v"); !errors.Is(err, syscall.E2BIG) {
		t.Errorf("an argument of %d bytes: %v, want E2BIG", MaxArgString+1, err)
	}
	if err := run("x", "K="+fits[:MaxArgString-1]); !errors.Is(err, syscall.E2BIG) {
		t.Errorf("an env string of %d bytes: %v, want E2BIG", MaxArgString+1, err)
	}
}
