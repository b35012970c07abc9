package spec

// Stage 1, lex: split each source into directives (keyword, value, position).

import (
	"strings"
	"unicode/utf8"
)

const utf8BOM = "\xEF\xBB\xBF"

// lex splits a source into directives, reporting lexical errors, and handles the
// global directives (ORCH_VERSION, ARG). Lines are cut with bytes.IndexByte, so
// line length is bounded only by memory.
func (p *parser) lex(src int, s Source) []rawDirective {
	// One conversion for the whole file; lines are substrings of it.
	data := strings.TrimPrefix(string(s.Data), utf8BOM)
	out := make([]rawDirective, 0, strings.Count(data, "\n")+1)
	first := true
	for n := 1; len(data) > 0; n++ {
		var ln string
		if i := strings.IndexByte(data, '\n'); i >= 0 {
			ln, data = data[:i], data[i+1:]
		} else {
			ln, data = data, ""
		}
		ln = strings.TrimSuffix(ln, "\r")
		at := pos{src: int32(src), line: int32(n)}
		if strings.IndexByte(ln, 0) >= 0 {
			p.errorf(at, "Orchfiles are UTF-8 text", "NUL byte in line")
			out = append(out, rawDirective{at: at})
			continue
		}
		if !utf8.ValidString(ln) {
			p.errorf(at, "Orchfiles are UTF-8 text", "invalid UTF-8 in line")
			out = append(out, rawDirective{at: at})
			continue
		}
		text := trimLeftBlank(ln)
		if text == "" || text[0] == '#' {
			continue
		}
		kw, val := text, ""
		if i := indexBlank(text); i >= 0 {
			kw, val = text[:i], trimRightBlank(trimLeftBlank(text[i+1:]))
		}
		d, known := directives[kw]
		if !known {
			p.unknown(at, kw)
			out = append(out, brokenLine(at, strings.ToUpper(kw)))
			continue
		}
		if val == "" {
			p.errorf(at, "write "+d.usage, "%s needs a value", kw)
			out = append(out, brokenLine(at, kw))
			continue
		}
		switch kw {
		case "ORCH_VERSION":
			if !first {
				p.errorf(at, "put ORCH_VERSION "+Version+" on the first line, before any ARG or SERVICE", "ORCH_VERSION must be the first directive")
			} else if val != Version && val != "0.2.0" && val != "0.2" {
				p.errorf(at, "this orchd implements Orchfile version "+Version, "unsupported ORCH_VERSION %s", quote(val))
			}
		case "ARG":
			p.declareArg(at, val)
		default:
			out = append(out, rawDirective{at: at, kw: kw, val: val})
		}
		first = false
	}
	return out
}

// brokenLine stands for a line that had an error. A broken SERVICE line still
// opens a (broken) block, so the lines after it are not blamed on the previous
// service.
func brokenLine(at pos, kw string) rawDirective {
	if kw == "SERVICE" {
		return rawDirective{at: at, kw: "SERVICE"}
	}
	return rawDirective{at: at}
}

func (p *parser) unknown(at pos, kw string) {
	up := strings.ToUpper(kw)
	if _, ok := directives[up]; ok && up != kw {
		p.errorf(at, "directives are UPPERCASE: write "+up, "unknown directive %s", quote(kw))
		return
	}
	hint := ""
	if s := suggest(kw); s != "" {
		hint = "did you mean " + s + "?"
		if up != kw {
			hint += " (directives are UPPERCASE)"
		}
	} else if up != kw && utf8.RuneCountInString(kw) <= 32 {
		hint = "directives are UPPERCASE"
	}
	p.errorf(at, hint, "unknown directive %s", quote(kw))
}

// Blanks separate keyword and value: spaces and tabs only.
func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func trimLeftBlank(s string) string {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	return s[i:]
}

func trimRightBlank(s string) string {
	i := len(s)
	for i > 0 && isBlank(s[i-1]) {
		i--
	}
	return s[:i]
}

func indexBlank(s string) int {
	for i := 0; i < len(s); i++ {
		if isBlank(s[i]) {
			return i
		}
	}
	return -1
}
