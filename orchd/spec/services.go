package spec

// Stage 3, services: collect each file's SERVICE blocks, directive by directive.

import (
	"path"
	"strings"
)

// parseServices walks one file's SERVICE blocks and merges each into the result.
func (p *parser) parseServices(file []rawDirective) {
	var cur *block
	var blk block // reused for every block: merge copies what it keeps
	seen := map[string]pos{}
	for _, d := range file {
		if d.kw == "" {
			if cur != nil {
				cur.tainted = true
			}
			continue
		}
		if d.kw == "SERVICE" {
			p.merge(cur)
			blk.reset(d.at)
			cur = &blk
			if d.val == "" { // already reported by lex
				cur.tainted = true
				continue
			}
			name, ok := p.expand(d)
			if !ok {
				continue
			}
			cur.name = name
			if !ValidServiceName(name) {
				p.errorf(d.at, "a service name is a lowercase letter followed by lowercase letters, digits or -, at most 63 characters", "invalid service name %s", quote(name))
				continue
			}
			if first, dup := seen[name]; dup {
				p.errorf(d.at, "merge the two blocks into one; overlays go in a separate file", "duplicate SERVICE %s (first defined at %s)", name, p.where(first))
				continue
			}
			seen[name] = d.at
			cur.valid = true
			continue
		}
		if cur == nil {
			p.errorf(d.at, "only ORCH_VERSION and ARG may appear before the first SERVICE; start a block with SERVICE <name>", "%s outside a SERVICE block", d.kw)
			continue
		}
		v, ok := p.expand(d)
		if !ok {
			cur.tainted = true
			continue
		}
		nerr := len(p.errs)
		p.directive(cur, d, v)
		if len(p.errs) > nerr {
			cur.tainted = true
		}
	}
	p.merge(cur)
}

// directive validates one service directive and records it in the block.
func (p *parser) directive(b *block, d rawDirective, v string) {
	def := directives[d.kw]
	builtinHint := func(hint string) string {
		if strings.Contains(v, "${") {
			return "built-in variables are filled at run time and cannot be used in " + d.kw
		}
		return hint
	}
	switch def.kind {
	case kindScalar:
		slot := scalarSlot[d.kw]
		if prev, dup := b.scalars.get(slot); dup {
			p.errorf(d.at, "a directive appears once per SERVICE block", "duplicate %s in service %s (first at %s)", d.kw, b.name, p.where(prev.at))
			return
		}
		if msg := argLimit(d.kw, v); msg != "" {
			p.errorf(d.at, largeValueHint, "%s: %s", d.kw, msg)
		} else if def.check != nil {
			if msg, hint := def.check(v); msg != "" {
				p.errorf(d.at, builtinHint(hint), "%s: %s", d.kw, msg)
			}
		}
		// Kept even when invalid, so that C1-C3 do not report follow-up errors.
		b.scalars[slot] = entry{val: v, at: d.at}
	case kindClear:
		for _, f := range strings.Fields(v) {
			if !isClearable(f) {
				p.errorf(d.at, "CLEAR applies to ENV, ENV_FILE, PUBLISH, VOLUME, REQUIRES or AFTER; a scalar is replaced by setting it again", "cannot CLEAR %s", quote(f))
				continue
			}
			if b.clears == nil {
				b.clears = map[string]bool{}
			}
			b.clears[f] = true
		}
	case kindList:
		switch d.kw {
		case "ENV":
			key, val, ok := strings.Cut(v, "=")
			if !ok {
				p.errorf(d.at, "write ENV KEY=value", "ENV: missing '=' in %s", quote(v))
				return
			}
			if !validEnvKey(key) {
				p.errorf(d.at, "a key is a letter or _ followed by letters, digits or _, with no spaces around =", "ENV: invalid key %s", quote(key))
				return
			}
			if msg := envLimit(key, val); msg != "" {
				p.errorf(d.at, largeValueHint, "%s", msg)
				return
			}
			if prev, dup := b.env[key]; dup {
				p.errorf(d.at, "set each key once per SERVICE block", "duplicate ENV %s in service %s (first at %s)", key, b.name, p.where(prev.at))
				return
			}
			if b.env == nil {
				b.env = map[string]entry{}
			}
			b.env[key] = entry{val: val, at: d.at}
		case "PUBLISH":
			pub, err := ParsePublish(v)
			if err != nil {
				p.errorf(d.at, builtinHint("write PUBLISH [addr:]host:container, e.g. 8080:80 or 127.0.0.1:8080:80 or [::1]:8080:80"), "PUBLISH %s: %v", quote(v), err)
				return
			}
			// One container port may be published on several host addresses or
			// ports; the same host binding twice is a conflict.
			for _, e := range b.publish {
				if e.p.Host == pub.Host && e.p.HostIP == pub.HostIP {
					p.errorf(d.at, "publish each host port once per SERVICE block", "duplicate PUBLISH of host port %s in service %s (first at %s)", hostBinding(pub), b.name, p.where(e.at))
					return
				}
			}
			b.publish = append(b.publish, pubEntry{p: pub, at: d.at})
		case "VOLUME":
			vol, err := ParseVolume(v)
			if err != nil {
				p.errorf(d.at, "write VOLUME name:/path or VOLUME /host/path:/path (relative host paths: ${ORCH_PROJECT}/dir)", "VOLUME %s: %v", quote(v), err)
				return
			}
			key := path.Clean(vol.Destination)
			for _, e := range b.volumes {
				if e.key == key {
					p.errorf(d.at, "mount each destination once per SERVICE block", "duplicate VOLUME destination %s in service %s (first at %s)", vol.Destination, b.name, p.where(e.at))
					return
				}
			}
			b.volumes = append(b.volumes, volEntry{v: vol, key: key, at: d.at})
		case "ENV_FILE":
			b.addList(d.kw, entry{val: v, at: d.at})
		case "REQUIRES", "AFTER":
			for _, name := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
				if !ValidServiceName(name) {
					p.errorf(d.at, "", "%s: invalid service name %s", d.kw, quote(name))
					continue
				}
				b.addList(d.kw, entry{val: name, at: d.at})
			}
		}
	}
}

func (b *block) reset(at pos) {
	clear(b.env)
	clear(b.clears)
	lists := b.lists
	for i := range lists {
		lists[i] = lists[i][:0]
	}
	*b = block{at: at, env: b.env, lists: lists, clears: b.clears, publish: b.publish[:0], volumes: b.volumes[:0]}
}

// Positional lists, by slot.
const (
	listEnvFile = iota
	listRequires
	listAfter
	numLists
)

func listSlot(kw string) int {
	switch kw {
	case "ENV_FILE":
		return listEnvFile
	case "REQUIRES":
		return listRequires
	}
	return listAfter
}

func (b *block) addList(kw string, e entry) {
	i := listSlot(kw)
	b.lists[i] = appendDedup(b.lists[i], e)
}

func appendDedup(list []entry, e entry) []entry {
	for _, x := range list {
		if x.val == e.val {
			return list
		}
	}
	return append(list, e)
}
