package spec

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Source is one Orchfile's content; Name (the path as given) is used in errors.
type Source struct {
	Name string
	Data []byte
}

// Options are the inputs to a parse besides the files.
type Options struct {
	// Args are --arg name=value overrides; they win over ORCH_ARG_<name> and
	// over ARG defaults, and define the variable even without an ARG line.
	Args map[string]string
	// LookupEnv reads ORCH_ARG_<name> for each declared ARG; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// ParseFiles reads the files (base first, overlays after) and parses them.
// A file that cannot be read is an error naming it.
func ParseFiles(paths []string, opts Options) (*Spec, error) {
	sources := make([]Source, 0, len(paths))
	var errs ErrorList
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: fmt.Sprintf("cannot read Orchfile: %v", err)})
			continue
		}
		sources = append(sources, Source{Name: p, Data: data})
	}
	if len(errs) > 0 {
		return nil, &errs
	}
	return Parse(sources, opts)
}

// Parse parses an Orchfile and its overlays (base first) into a merged, expanded
// Spec. On failure the error is an *ErrorList holding every problem found,
// sorted by file (in the order given) then line.
//
// Choices the language reference leaves open:
//   - A SERVICE defined twice in one file is an error; overlays are separate files.
//   - Within one SERVICE block a scalar directive may appear once, an ENV key
//     once, a VOLUME destination once and a PUBLISH host binding once (one
//     container port may be published on several host ports or addresses; an
//     overlay's entries for a container port replace all earlier ones for it).
//   - ARG may appear anywhere (it is always global); ARG name without a default
//     must get its value from --arg or ORCH_ARG_name. ARG defaults may refer to
//     other ARGs; --arg and environment values are taken literally.
//   - ${name} needs a variable name inside the braces; other "${" text (shell
//     forms such as ${a:-b}) is kept as written. $name is never expanded.
func Parse(sources []Source, opts Options) (*Spec, error) {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	p := &parser{opts: opts, services: map[string]*msvc{}}
	if len(sources) == 0 {
		p.errs = append(p.errs, errEntry{src: -1, e: &Error{File: "orchd", Msg: "no Orchfile given"}})
		return nil, p.errorList()
	}
	lexed := make([][]rawDirective, len(sources))
	p.budget = expansionBudget
	for _, s := range sources {
		p.files = append(p.files, s.Name)
		p.budget += 4 * len(s.Data)
	}
	for i, s := range sources {
		lexed[i] = p.lex(i, s)
	}
	p.resolveArgs()
	for _, file := range lexed {
		p.parseServices(file)
	}
	s := p.build()
	if len(p.errs) > 0 {
		return nil, p.errorList()
	}
	return s, nil
}

// expansionBudget is the base number of bytes variable expansion may produce in
// one parse, on top of four times the input size.
const expansionBudget = 16 << 20

// pos locates a directive: source index (which names the file and orders
// errors) and line.
type pos struct {
	src, line int32
}

// where formats a position as FILE:LINE for messages.
func (p *parser) where(at pos) string {
	return p.files[at.src] + ":" + strconv.Itoa(int(at.line))
}

func (p pos) before(q pos) bool {
	return p.src < q.src || p.src == q.src && p.line < q.line
}

// rawDirective is one lexed line; kw is empty for a line that had an error, so
// that its SERVICE block knows it is incomplete.
type rawDirective struct {
	at  pos
	kw  string
	val string
}

type errEntry struct {
	src int
	seq int
	e   *Error
}

type argDecl struct {
	at         pos
	value      string
	hasDefault bool
}

// entry is one directive value with where it came from.
type entry struct {
	val string
	at  pos
}

type pubEntry struct {
	p  Publish
	at pos
}

type volEntry struct {
	v   Volume
	key string // cleaned destination
	at  pos
}

func (e entry) isSet() bool { return e.at.line > 0 }

// scalarSet holds one entry per scalar directive, indexed by scalarSlot; an
// array rather than a map keeps per-service allocations low.
type scalarSet [numScalars]entry

func (s *scalarSet) get(slot int) (entry, bool) { return s[slot], s[slot].isSet() }

// block is one SERVICE block of one file.
type block struct {
	name    string
	at      pos
	valid   bool
	scalars scalarSet
	env     map[string]entry
	publish []pubEntry
	volumes []volEntry
	lists   [numLists][]entry // ENV_FILE, REQUIRES, AFTER
	clears  map[string]bool
	// tainted: some line of the block had an error, so "neither FROM nor RUN"
	// would only repeat it.
	tainted bool
}

// msvc is a service being merged across files.
type msvc struct {
	name    string
	at      pos // SERVICE line of its first definition
	scalars scalarSet
	env     map[string]entry
	publish []pubEntry
	volumes []volEntry
	lists   [numLists][]entry
	tainted bool
}

type parser struct {
	opts     Options
	errs     []errEntry
	argDecls map[string]*argDecl
	argVals  map[string]string
	badArgs  map[string]bool // ARGs whose value failed; references to them are not reported again
	services map[string]*msvc
	order    []*msvc
	files    []string // source names, by source index
	// budget bounds the bytes that variable expansion may produce in one parse.
	budget int
}

func (p *parser) errorf(at pos, hint, format string, a ...any) {
	p.errs = append(p.errs, errEntry{src: int(at.src), seq: len(p.errs), e: &Error{
		File: p.files[at.src], Line: int(at.line), Msg: fmt.Sprintf(format, a...), Hint: hint,
	}})
}

func (p *parser) errorList() *ErrorList {
	slices.SortStableFunc(p.errs, func(a, b errEntry) int {
		if c := cmp.Compare(a.src, b.src); c != 0 {
			return c
		}
		if c := cmp.Compare(a.e.Line, b.e.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	l := make(ErrorList, len(p.errs))
	for i, e := range p.errs {
		l[i] = e.e
	}
	return &l
}

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
		if def.check != nil {
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

var (
	hostOnly      = [...]int{slotUser, slotStop, slotReload}
	containerOnly = [...]int{slotEntrypoint, slotCmd}
)

// merge applies one file's block onto the merged service (creating it when the
// service is new): mode switch, then CLEAR, then this block's values.
func (p *parser) merge(b *block) {
	if b == nil || !b.valid {
		return
	}
	m, ok := p.services[b.name]
	if !ok {
		m = &msvc{name: b.name, at: b.at}
		p.services[b.name] = m
		p.order = append(p.order, m)
	}
	m.tainted = m.tainted || b.tainted
	_, bFrom := b.scalars.get(slotFrom)
	_, bRun := b.scalars.get(slotRun)
	_, mFrom := m.scalars.get(slotFrom)
	_, mRun := m.scalars.get(slotRun)
	if bFrom && !bRun && mRun {
		m.scalars[slotRun] = entry{}
		for _, k := range hostOnly {
			m.scalars[k] = entry{}
		}
	}
	if bRun && !bFrom && mFrom {
		m.scalars[slotFrom] = entry{}
		for _, k := range containerOnly {
			m.scalars[k] = entry{}
		}
		m.publish, m.volumes = nil, nil
	}
	for c := range b.clears {
		switch c {
		case "ENV":
			clear(m.env)
		case "PUBLISH":
			m.publish = nil
		case "VOLUME":
			m.volumes = nil
		default:
			m.lists[listSlot(c)] = nil
		}
	}
	for i, e := range b.scalars {
		if e.isSet() {
			m.scalars[i] = e
		}
	}
	if len(b.env) > 0 && m.env == nil {
		m.env = make(map[string]entry, len(b.env))
	}
	for k, e := range b.env {
		m.env[k] = e
	}
	if len(b.publish) > 0 {
		m.publish = mergePublish(m.publish, b.publish)
	}
	for _, e := range b.volumes {
		i := slices.IndexFunc(m.volumes, func(x volEntry) bool { return x.key == e.key })
		if i >= 0 {
			m.volumes[i] = e
		} else {
			m.volumes = append(m.volumes, e)
		}
	}
	for i, list := range b.lists {
		for _, e := range list {
			m.lists[i] = appendDedup(m.lists[i], e)
		}
	}
}

// mergePublish applies an overlay's PUBLISH entries: for each container port the
// overlay publishes, its entries replace all earlier ones for that port (at the
// place of the first); ports new to the service are appended.
func mergePublish(base, over []pubEntry) []pubEntry {
	ports := map[int]bool{}
	for _, e := range over {
		ports[e.p.Container] = true
	}
	out := make([]pubEntry, 0, len(base)+len(over))
	placed := map[int]bool{}
	for _, e := range base {
		port := e.p.Container
		if !ports[port] {
			out = append(out, e)
			continue
		}
		if !placed[port] {
			placed[port] = true
			for _, o := range over {
				if o.p.Container == port {
					out = append(out, o)
				}
			}
		}
	}
	for _, o := range over {
		if !placed[o.p.Container] {
			out = append(out, o)
		}
	}
	return out
}

func hostBinding(p Publish) string {
	switch {
	case p.HostIP == "":
		return strconv.Itoa(p.Host)
	case strings.Contains(p.HostIP, ":"):
		return "[" + p.HostIP + "]:" + strconv.Itoa(p.Host)
	}
	return p.HostIP + ":" + strconv.Itoa(p.Host)
}

// build checks the constraints on the merged services and produces the Spec.
func (p *parser) build() *Spec {
	s := &Spec{Version: Version, Services: make([]Service, 0, len(p.order))}
	if len(p.argVals) > 0 {
		s.Args = p.argVals
	}
	index := make(map[string]int, len(p.order))
	for i, m := range p.order {
		index[m.name] = i
	}
	adj := make([][]depEdge, len(p.order))
	for i, m := range p.order {
		p.checkMode(m)
		for _, kw := range [...]string{"REQUIRES", "AFTER"} {
			for _, e := range m.lists[listSlot(kw)] {
				j, ok := index[e.val]
				if !ok {
					if kw == "REQUIRES" {
						hint := "define SERVICE " + e.val + ", or use AFTER for an optional ordering"
						if near := p.nearestService(e.val); near != "" {
							hint = "did you mean " + near + "? Otherwise " + hint
						}
						p.errorf(e.at, hint, "service %s REQUIRES undefined service %s", m.name, e.val)
					}
					continue
				}
				adj[i] = append(adj[i], depEdge{to: j, at: e.at})
			}
		}
		s.Services = append(s.Services, m.service())
	}
	for _, c := range findCycles(adj) {
		p.errorf(c.edge.at, "REQUIRES and AFTER must not form a cycle", "dependency cycle: %s", cycleString(c.cycle, func(i int) string { return p.order[i].name }))
	}
	return s
}

// nearestService returns a defined service whose name is a likely typo of name.
func (p *parser) nearestService(name string) string {
	best, bestD := "", 3
	for _, m := range p.order {
		if d := editDistance(name, m.name); d < bestD {
			best, bestD = m.name, d
		}
	}
	if bestD*3 > len(name) { // too short for the edit to look like a typo
		return ""
	}
	return best
}

// checkMode enforces C1 (exactly one of FROM/RUN), C2 and C3.
func (p *parser) checkMode(m *msvc) {
	from, hasFrom := m.scalars.get(slotFrom)
	run, hasRun := m.scalars.get(slotRun)
	switch {
	case hasFrom && hasRun:
		later := run.at
		if run.at.before(from.at) {
			later = from.at
		}
		p.errorf(later, "a service is either a container (FROM image) or a host process (RUN command); keep one",
			"service %s has both FROM (at %s) and RUN (at %s)", m.name, p.where(from.at), p.where(run.at))
	case !hasFrom && !hasRun:
		if m.tainted {
			return
		}
		p.errorf(m.at, "add FROM image (container) or RUN command (host process)", "service %s has neither FROM nor RUN", m.name)
	case hasRun:
		for _, k := range containerOnly {
			if e, ok := m.scalars.get(k); ok {
				p.errorf(e.at, "remove "+scalarNames[k]+", or replace RUN with FROM image", "%s is only valid with FROM: service %s is a host service (RUN at %s)", scalarNames[k], m.name, p.where(run.at))
			}
		}
		for _, e := range m.publish {
			p.errorf(e.at, "remove PUBLISH (a host process binds its own ports), or replace RUN with FROM image", "PUBLISH is only valid with FROM: service %s is a host service (RUN at %s)", m.name, p.where(run.at))
		}
		for _, e := range m.volumes {
			p.errorf(e.at, "remove VOLUME, or replace RUN with FROM image", "VOLUME is only valid with FROM: service %s is a host service (RUN at %s)", m.name, p.where(run.at))
		}
	case hasFrom:
		for _, k := range hostOnly {
			if e, ok := m.scalars.get(k); ok {
				p.errorf(e.at, "remove "+scalarNames[k]+", or replace FROM with RUN command", "%s is only valid with RUN: service %s is a container service (FROM at %s)", scalarNames[k], m.name, p.where(from.at))
			}
		}
	}
}

// service converts a merged service to its JSON form, filling the defaults that
// readers need to see (restart, timeouts, recreate).
func (m *msvc) service() Service {
	sc := func(slot int) string { return m.scalars[slot].val }
	svc := Service{
		Name:             m.name,
		Image:            sc(slotFrom),
		RunCommand:       sc(slotRun),
		Entrypoint:       sc(slotEntrypoint),
		Cmd:              sc(slotCmd),
		User:             sc(slotUser),
		StopCommand:      sc(slotStop),
		ReloadCommand:    sc(slotReload),
		Workdir:          sc(slotWorkdir),
		Healthcheck:      sc(slotHealthcheck),
		ReadinessTimeout: Duration(sc(slotReadinessTimeout)),
		Oneshot:          sc(slotOneshot) == "true",
		Disabled:         sc(slotDisabled) == "true",
		Recreate:         cmp.Or(sc(slotRecreate), "never"),
		Restart: Restart{
			Policy:             RestartNo,
			Delay:              cmp.Or(Duration(sc(slotRestartDelay)), DefaultRestartDelay),
			StartLimitBurst:    DefaultStartLimitBurst,
			StartLimitInterval: cmp.Or(Duration(sc(slotStartLimitInterval)), DefaultStartLimitInterval),
		},
		Timeouts: Timeouts{
			Start: cmp.Or(Duration(sc(slotTimeoutStart)), DefaultTimeoutStart),
			Stop:  cmp.Or(Duration(sc(slotTimeoutStop)), DefaultTimeoutStop),
		},
		Resources: Resources{Memory: sc(slotMemory), CPUQuota: sc(slotCpuQuota)},
		Logging:   Logging{Stdout: sc(slotStdout), Stderr: sc(slotStderr)},
	}
	if svc.Image != "" {
		svc.Mode = ModeContainer
	} else {
		svc.Mode = ModeHost
	}
	switch sc(slotRestart) {
	case "always":
		svc.Restart.Policy = RestartAlways
	case "on-failure":
		svc.Restart.Policy = RestartOnFailure
	}
	if n := atoi(sc(slotStartLimitBurst)); n > 0 {
		svc.Restart.StartLimitBurst = int(n)
	}
	if e, ok := m.scalars.get(slotCpus); ok {
		if f, err := strconv.ParseFloat(e.val, 64); err == nil {
			svc.Resources.CPUs = &f
		}
	}
	svc.Resources.LimitNofile = atoi(sc(slotLimitNofile))
	svc.Resources.LimitNproc = atoi(sc(slotLimitNproc))
	svc.Resources.TasksMax = atoi(sc(slotTasksMax))
	svc.Resources.IOWeight = int(atoi(sc(slotIoWeight)))
	if len(m.env) > 0 {
		svc.Env = make(map[string]string, len(m.env))
		for k, e := range m.env {
			svc.Env[k] = e.val
		}
	}
	for _, e := range m.publish {
		svc.Publish = append(svc.Publish, e.p)
	}
	for _, e := range m.volumes {
		svc.Volumes = append(svc.Volumes, e.v)
	}
	svc.EnvFiles = values(m.lists[listEnvFile])
	svc.Requires = values(m.lists[listRequires])
	svc.After = values(m.lists[listAfter])
	return svc
}

// atoi converts an already validated integer; unset or invalid (a parse that
// will fail anyway) gives 0.
func atoi(s string) int64 {
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func values(list []entry) []string {
	if len(list) == 0 {
		return nil
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.val
	}
	return out
}

// Service returns the named service.
func (s *Spec) Service(name string) (*Service, bool) {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i], true
		}
	}
	return nil, false
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
