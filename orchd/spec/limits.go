package spec

// What a program can be given: a command or ENV value the kernel would refuse
// at start ("argument list too long", E2BIG) is a parse error here, with its
// line, rather than a service that fails to start.

import (
	"fmt"

	"github.com/google/shlex"
)

const (
	// MaxArgString is the longest single argument or environment string
	// ("KEY=value") Linux passes to a program: MAX_ARG_STRLEN, 32 pages =
	// 128 KiB including the terminating NUL.
	MaxArgString = 128<<10 - 1
	// MaxArgTotal bounds a service's command words and ENV strings together
	// (ARG_MAX). Linux allows a quarter of the stack limit, 2 MiB with the
	// default 8 MiB stack; orchd keeps to 1 MiB (macOS's ARG_MAX), which
	// leaves room for the image's environment and the variables runtimes add.
	MaxArgTotal = 1 << 20
	// argPointer is what each string costs beyond its bytes and NUL: its
	// pointer in argv or envp, which Linux counts against ARG_MAX.
	argPointer = 8
)

const largeValueHint = "keep large scripts and data in files: RUN a script file, mount data with VOLUME, pass a path in ENV"

// shellCommands are passed to /bin/sh -c as one argument each.
var shellCommands = map[string]bool{"RUN": true, "STOP": true, "RELOAD": true, "HEALTHCHECK": true}

// argLimit checks a command directive against MAX_ARG_STRLEN: a shell command
// is one argument; ENTRYPOINT and CMD are split into words like a shell does,
// and each word is one argument.
func argLimit(kw, v string) string {
	if len(v) <= MaxArgString {
		return ""
	}
	if shellCommands[kw] {
		return fmt.Sprintf("the command is %d bytes; it is passed to /bin/sh -c as one argument, and Linux refuses an argument longer than %d bytes (MAX_ARG_STRLEN)", len(v), MaxArgString)
	}
	if kw != "ENTRYPOINT" && kw != "CMD" {
		return ""
	}
	words, err := shlex.Split(v)
	if err != nil {
		return fmt.Sprintf("%d bytes that do not split into arguments (%v)", len(v), err)
	}
	for i, w := range words {
		if len(w) > MaxArgString {
			return fmt.Sprintf("argument %d is %d bytes; Linux refuses an argument longer than %d bytes (MAX_ARG_STRLEN)", i+1, len(w), MaxArgString)
		}
	}
	return ""
}

// envLimit checks one ENV entry against MAX_ARG_STRLEN.
func envLimit(key, val string) string {
	if n := len(key) + 1 + len(val); n > MaxArgString {
		return fmt.Sprintf("ENV %s is %d bytes as KEY=value; Linux refuses an environment string longer than %d bytes (MAX_ARG_STRLEN)", key, n, MaxArgString)
	}
	return ""
}

// checkArgTotal checks a merged service's command and ENV together against
// MaxArgTotal, blaming the largest contributor's line.
func (p *parser) checkArgTotal(m *msvc) {
	if m.tainted {
		return // an oversized value was reported on its own line
	}
	total := 0
	var big entry
	bigName, bigSize := "", -1
	add := func(name string, e entry, strs ...string) {
		n := 0
		for _, s := range strs {
			n += len(s) + 1 + argPointer
		}
		total += n
		if n > bigSize || (n == bigSize && name < bigName) {
			big, bigName, bigSize = e, name, n
		}
	}
	if e, ok := m.scalars.get(slotRun); ok {
		add("RUN", e, "/bin/sh", "-c", e.val)
	}
	for _, slot := range [...]int{slotEntrypoint, slotCmd} {
		if e, ok := m.scalars.get(slot); ok {
			words, err := shlex.Split(e.val)
			if err != nil {
				words = []string{e.val}
			}
			add(scalarNames[slot], e, words...)
		}
	}
	for k, e := range m.env {
		add("ENV "+k, e, k+"="+e.val)
	}
	if total > MaxArgTotal {
		p.errorf(big.at, largeValueHint, "service %s: its command and ENV come to %d bytes, more than the %d a program can be given (ARG_MAX); the largest is %s (%d bytes)", m.name, total, MaxArgTotal, bigName, bigSize)
	}
}
