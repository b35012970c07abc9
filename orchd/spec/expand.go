package spec

import (
	"maps"
	"strings"
)

// builtinNames are the variables orchd fills at run time; a parse keeps a
// reference to one of them verbatim unless an ARG gives it a value.
var builtinNames = [...]string{
	"ORCH_PROJECT", "ORCH_DATA", "ORCH_STATE_DIR", "ORCH_CONTAINERS_DIR",
	"SERVICE_NAME", "PORT_OFFSET", "CONTAINER_PREFIX",
}

// Builtins lists the built-in variable names (without "${}").
func Builtins() []string { return append([]string(nil), builtinNames[:]...) }

func isBuiltin(name string) bool {
	for _, b := range builtinNames {
		if b == name {
			return true
		}
	}
	return false
}

// validVarName reports whether name can appear inside ${...}.
func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// expandVars replaces each ${name} in s with lookup(name). References lookup does
// not resolve are kept verbatim and returned in undefined (in order, no
// duplicates). A "${" not followed by a variable name and "}" is left as is.
// When the result would exceed limit bytes (limit >= 0) expansion stops and
// tooLong is set: ARGs referring to ARGs could otherwise grow exponentially.
func expandVars(s string, lookup func(string) (string, bool), limit int) (out string, undefined []string, tooLong bool) {
	i := strings.Index(s, "${")
	if i < 0 {
		return s, nil, false
	}
	var b strings.Builder
	b.Grow(len(s))
	for i >= 0 {
		b.WriteString(s[:i])
		s = s[i:]
		end := strings.IndexByte(s, '}')
		if end < 0 {
			break
		}
		name := s[2:end]
		if !validVarName(name) {
			b.WriteString("${")
			s = s[2:]
			i = strings.Index(s, "${")
			continue
		}
		if v, ok := lookup(name); ok {
			if limit >= 0 && b.Len()+len(v)+len(s)-end-1 > limit {
				return "", undefined, true
			}
			b.WriteString(v)
		} else {
			b.WriteString(s[:end+1])
			if !contains(undefined, name) {
				undefined = append(undefined, name)
			}
		}
		s = s[end+1:]
		i = strings.Index(s, "${")
	}
	b.WriteString(s)
	return b.String(), undefined, false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ExpandBuiltins replaces built-in references in every string field of svc with
// their values from vars; SERVICE_NAME is svc.Name unless vars sets it. Names
// without a value stay verbatim. Maps and slices are copied, never modified in
// place, so a Service copied out of a Spec does not alter the Spec.
func ExpandBuiltins(svc *Service, vars map[string]string) {
	lookup := func(name string) (string, bool) {
		if !isBuiltin(name) {
			return "", false
		}
		if v, ok := vars[name]; ok {
			return v, true
		}
		if name == "SERVICE_NAME" {
			return svc.Name, true
		}
		return "", false
	}
	x := func(s string) string {
		out, _, _ := expandVars(s, lookup, -1)
		return out
	}
	for _, f := range []*string{
		&svc.Image, &svc.RunCommand, &svc.Entrypoint, &svc.Cmd, &svc.User,
		&svc.StopCommand, &svc.ReloadCommand, &svc.Workdir, &svc.Healthcheck,
		&svc.Logging.Stdout, &svc.Logging.Stderr, &svc.Resources.Memory, &svc.Resources.CPUQuota,
		&svc.Recreate,
	} {
		*f = x(*f)
	}
	if svc.Env != nil {
		env := maps.Clone(svc.Env)
		for k, v := range env {
			env[k] = x(v)
		}
		svc.Env = env
	}
	if svc.EnvFiles != nil {
		files := make([]string, len(svc.EnvFiles))
		for i, f := range svc.EnvFiles {
			files[i] = x(f)
		}
		svc.EnvFiles = files
	}
	if svc.Volumes != nil {
		vols := make([]Volume, len(svc.Volumes))
		for i, v := range svc.Volumes {
			v.Source, v.Destination = x(v.Source), x(v.Destination)
			vols[i] = v
		}
		svc.Volumes = vols
	}
	if svc.Publish != nil {
		pubs := make([]Publish, len(svc.Publish))
		for i, p := range svc.Publish {
			p.HostIP = x(p.HostIP)
			pubs[i] = p
		}
		svc.Publish = pubs
	}
	if svc.Requires != nil {
		svc.Requires = append([]string(nil), svc.Requires...)
	}
	if svc.After != nil {
		svc.After = append([]string(nil), svc.After...)
	}
}
