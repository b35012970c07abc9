package spec

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
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

// Service returns the named service.
func (s *Spec) Service(name string) (*Service, bool) {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i], true
		}
	}
	return nil, false
}
