package spec

import (
	"strconv"
	"strings"
)

// Error is one problem found in an Orchfile, located by file and line.
// Line 0 means the problem concerns the file as a whole (or a command-line
// argument, with File naming the flag).
type Error struct {
	File string
	Line int
	Msg  string
	Hint string
}

// Error formats the problem as "FILE:LINE: msg", followed by an indented hint line
// when there is one.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString("\n  hint: ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// ErrorList is every problem of one parse, sorted by file (in the order the
// files were given) then line.
type ErrorList []*Error

// Error joins the errors, one per line.
func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}
