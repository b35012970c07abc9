package spec

// Stage 2, args: resolve ARG declarations and expand ${VAR} references.

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

func (p *parser) declareArg(at pos, val string) {
	name, def, hasDefault := strings.Cut(val, "=")
	if !validArgName(name) {
		p.errorf(at, "an ARG name is a letter followed by letters, digits or _; write ARG name=default", "invalid ARG name %s", quote(name))
		return
	}
	if p.argDecls == nil {
		p.argDecls = map[string]*argDecl{}
	}
	// Later declarations (later lines, later files) win.
	p.argDecls[name] = &argDecl{at: at, value: def, hasDefault: hasDefault}
}

// resolveArgs computes the final ARG values: --arg > ORCH_ARG_<name> > the last
// declaration's default. Defaults may refer to other ARGs and to built-ins.
func (p *parser) resolveArgs() {
	p.argVals = map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(p.opts.Args)) {
		if !validArgName(name) {
			p.errs = append(p.errs, errEntry{src: -1, seq: len(p.errs), e: &Error{
				File: "--arg", Msg: fmt.Sprintf("invalid ARG name %s", quote(name)),
				Hint: "an ARG name is a letter followed by letters, digits or _",
			}})
			continue
		}
		p.argVals[name] = p.opts.Args[name]
	}
	p.badArgs = map[string]bool{}
	state := map[string]uint8{} // 1 resolving, 2 done
	var resolve func(name string) (string, bool)
	resolve = func(name string) (string, bool) {
		if v, ok := p.argVals[name]; ok {
			return v, true
		}
		d, ok := p.argDecls[name]
		if !ok {
			return "", false
		}
		switch state[name] {
		case 1:
			return "", false
		case 2: // resolved with an error; keep the reference
			return "${" + name + "}", true
		}
		state[name] = 1
		defer func() { state[name] = 2 }()
		if v, ok := p.opts.LookupEnv("ORCH_ARG_" + name); ok {
			p.argVals[name] = v
			return v, true
		}
		if !d.hasDefault {
			p.errorf(d.at, "give it a default (ARG "+name+"=...), pass --arg "+name+"=... or set ORCH_ARG_"+name, "ARG %s has no value", name)
			p.badArgs[name] = true
			return "${" + name + "}", true
		}
		v, undefined, tooLong := expandVars(d.value, func(ref string) (string, bool) {
			if state[ref] == 1 {
				p.errorf(d.at, "", "ARG %s refers to itself through ${%s}", name, ref)
				p.badArgs[name] = true
				return "${" + ref + "}", true
			}
			if v, ok := resolve(ref); ok {
				return v, true
			}
			if isBuiltin(ref) {
				return "${" + ref + "}", true
			}
			return "", false
		}, max(p.budget, 0))
		if tooLong {
			p.errorf(d.at, "", "ARG %s is longer than %d bytes after expanding variables", name, p.budget)
			p.badArgs[name] = true
		}
		p.budget -= len(v)
		for _, u := range undefined {
			p.errorf(d.at, "declare ARG "+u+"=... or pass --arg "+u+"=...", "undefined variable ${%s}", u)
			p.badArgs[name] = true
		}
		if p.badArgs[name] {
			return "${" + name + "}", true
		}
		p.argVals[name] = v
		return v, true
	}
	for _, name := range slices.Sorted(maps.Keys(p.argDecls)) {
		resolve(name)
	}
}

// expand substitutes ARG values into a directive's value; built-ins without a
// value stay verbatim and any other unknown reference is an error.
func (p *parser) expand(d rawDirective) (string, bool) {
	v, undefined, tooLong := expandVars(d.val, func(name string) (string, bool) {
		if v, ok := p.argVals[name]; ok {
			return v, true
		}
		if isBuiltin(name) || p.badArgs[name] {
			return "${" + name + "}", true
		}
		return "", false
	}, max(p.budget, 0))
	if tooLong {
		p.errorf(d.at, "", "%s is longer than %d bytes after expanding variables", d.kw, p.budget)
		return "", false
	}
	if len(v) != len(d.val) || strings.Contains(d.val, "${") {
		p.budget -= len(v)
	}
	for _, u := range undefined {
		p.errorf(d.at, "declare ARG "+u+"=... or pass --arg "+u+"=...", "undefined variable ${%s}", u)
	}
	if len(undefined) > 0 {
		return "", false
	}
	if trimLeftBlank(v) == "" {
		p.errorf(d.at, "write "+directives[d.kw].usage, "%s is empty after expanding variables", d.kw)
		return "", false
	}
	return v, true
}
