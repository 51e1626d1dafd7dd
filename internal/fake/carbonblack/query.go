package carbonblack

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// kind says how a field's values are compared.
type kind int

const (
	kindString kind = iota // whole value, case-insensitive
	kindText               // whole value, or its words
	kindPath               // whole value, or its last path component
	kindInt
	kindBool
	kindDate
)

// fieldKinds are the binary document fields a query may name.
var fieldKinds = map[string]kind{
	"md5":                    kindString,
	"original_filename":      kindPath,
	"observed_filename":      kindPath,
	"internal_name":          kindString,
	"company_name":           kindText,
	"product_name":           kindText,
	"file_desc":              kindText,
	"legal_copyright":        kindText,
	"legal_trademark":        kindText,
	"comments":               kindText,
	"private_build":          kindText,
	"special_build":          kindText,
	"digsig_publisher":       kindText,
	"digsig_issuer":          kindText,
	"digsig_subject":         kindText,
	"digsig_prog_name":       kindText,
	"file_version":           kindString,
	"product_version":        kindString,
	"digsig_result":          kindString,
	"digsig_result_code":     kindString,
	"signed":                 kindString,
	"os_type":                kindString,
	"group":                  kindString,
	"endpoint":               kindString,
	"hostname":               kindString, // the host part of endpoint entries
	"icon":                   kindString,
	"orig_mod_len":           kindInt,
	"copied_mod_len":         kindInt,
	"host_count":             kindInt,
	"cb_version":             kindInt,
	"facet_id":               kindInt,
	"event_partition_id":     kindInt,
	"is_executable_image":    kindBool,
	"is_64bit":               kindBool,
	"server_added_timestamp": kindDate,
	"timestamp":              kindDate,
	"last_seen":              kindDate,
	"digsig_sign_time":       kindDate,
}

// fieldPrefixes are the dynamic fields: feed tags and watchlist hits.
var fieldPrefixes = []struct {
	prefix string
	kind   kind
}{
	{"alliance_score_", kindInt},
	{"alliance_link_", kindString},
	{"alliance_data_", kindString},
	{"alliance_updated_", kindDate},
	{"watchlist_", kindDate},
}

// defaultFields are searched by a bare term that is not an MD5.
var defaultFields = []string{"md5", "original_filename", "observed_filename", "internal_name", "product_name", "company_name", "file_desc"}

func lookupField(name string) (kind, bool) {
	if k, ok := fieldKinds[name]; ok {
		return k, true
	}
	for _, p := range fieldPrefixes {
		if strings.HasPrefix(name, p.prefix) && len(name) > len(p.prefix) {
			return p.kind, true
		}
	}
	return 0, false
}

// docView is what a query sees of one binary: its document and the
// alliance fields of the feeds.
type docView struct {
	rec      *record
	alliance map[string]any
}

func (d *docView) get(field string) (any, bool) {
	if v, ok := d.alliance[field]; ok {
		return v, true
	}
	v, ok := d.rec.doc[field]
	return v, ok
}

// values returns the field's values, a list flattened.
func (d *docView) values(field string) []any {
	if field == "hostname" {
		var out []any
		for _, e := range d.values("endpoint") {
			host, _, _ := strings.Cut(fmt.Sprint(e), "|")
			out = append(out, host)
		}
		return out
	}
	v, ok := d.get(field)
	if !ok || v == nil {
		return nil
	}
	if list, ok := v.([]any); ok {
		return list
	}
	return []any{v}
}

func (d *docView) times(field string) []time.Time {
	if field == "server_added_timestamp" {
		return []time.Time{d.rec.added}
	}
	var out []time.Time
	for _, v := range d.values(field) {
		if t, err := parseSolrTime(fmt.Sprint(v)); err == nil {
			out = append(out, t)
		}
	}
	return out
}

// node is a parsed query.
type node interface {
	match(d *docView) bool
}

type matchAll struct{}

func (matchAll) match(*docView) bool { return true }

type andNode []node

func (n andNode) match(d *docView) bool {
	for _, k := range n {
		if !k.match(d) {
			return false
		}
	}
	return true
}

type orNode []node

func (n orNode) match(d *docView) bool {
	for _, k := range n {
		if k.match(d) {
			return true
		}
	}
	return false
}

type notNode struct{ n node }

func (n notNode) match(d *docView) bool { return !n.n.match(d) }

// existsNode is field:*.
type existsNode struct{ field string }

func (n existsNode) match(d *docView) bool { return len(d.values(n.field)) > 0 }

// termNode is field:value for every kind but dates (ranges).
type termNode struct {
	field   string
	kind    kind
	text    string // lower case, unescaped
	pattern string // lower case glob, when glob
	glob    bool
	phrase  bool
	num     float64
	b       bool
}

func (n termNode) match(d *docView) bool {
	for _, v := range d.values(n.field) {
		switch n.kind {
		case kindInt:
			if f, ok := toFloat(v); ok && f == n.num {
				return true
			}
		case kindBool:
			if b, ok := v.(bool); ok && b == n.b {
				return true
			}
		default:
			if n.matchString(strings.ToLower(fmt.Sprint(v))) {
				return true
			}
		}
	}
	return false
}

func (n termNode) matchString(v string) bool {
	eq := func(s string) bool {
		if n.glob {
			return globMatch(n.pattern, s)
		}
		return s == n.text
	}
	if eq(v) {
		return true
	}
	switch n.kind {
	case kindPath:
		return eq(lastComponent(v))
	case kindText:
		words := splitWords(v)
		if n.phrase {
			return containsSeq(words, splitWords(n.text))
		}
		for _, w := range words {
			if eq(w) {
				return true
			}
		}
	}
	return false
}

// bound is one end of a range.
type bound struct {
	open bool // *
	incl bool
	num  float64
	t    time.Time
	s    string
}

type rangeNode struct {
	field  string
	kind   kind
	lo, hi bound
}

func (n rangeNode) match(d *docView) bool {
	if n.field == "server_added_timestamp" { // every binary has one: no list
		return n.inRange(cmpTime(d.rec.added, n.lo.t), cmpTime(d.rec.added, n.hi.t))
	}
	if n.kind == kindDate {
		for _, t := range d.times(n.field) {
			if n.inRange(cmpTime(t, n.lo.t), cmpTime(t, n.hi.t)) {
				return true
			}
		}
		return false
	}
	if n.kind == kindInt && n.field != "hostname" {
		if v, ok := d.get(n.field); ok {
			if _, list := v.([]any); !list { // one number: no list
				f, ok := toFloat(v)
				return ok && n.inRange(cmpFloat(f, n.lo.num), cmpFloat(f, n.hi.num))
			}
		}
	}
	for _, v := range d.values(n.field) {
		switch n.kind {
		case kindInt:
			if f, ok := toFloat(v); ok && n.inRange(cmpFloat(f, n.lo.num), cmpFloat(f, n.hi.num)) {
				return true
			}
		default:
			s := strings.ToLower(fmt.Sprint(v))
			if n.inRange(strings.Compare(s, n.lo.s), strings.Compare(s, n.hi.s)) {
				return true
			}
		}
	}
	return false
}

// inRange takes the comparisons of a value with the lower and upper bound.
func (n rangeNode) inRange(lo, hi int) bool {
	okLo := n.lo.open || lo > 0 || (lo == 0 && n.lo.incl)
	okHi := n.hi.open || hi < 0 || (hi == 0 && n.hi.incl)
	return okLo && okHi
}

// queryError is a query the simulator cannot parse.
type queryError struct{ msg string }

func (e *queryError) Error() string { return e.msg }

// parseQuery parses q; it returns the query and the terms it contains.
func parseQuery(q string) (node, []string, error) {
	p := &parser{src: []rune(q), terms: []string{}}
	p.skipSpace()
	if p.eof() {
		return matchAll{}, p.terms, nil
	}
	n, err := p.parseOr("")
	if err != nil {
		return nil, nil, err
	}
	p.skipSpace()
	if !p.eof() {
		return nil, nil, p.errorf("unexpected %q", string(p.peek()))
	}
	return n, p.terms, nil
}

type parser struct {
	src   []rune
	pos   int
	terms []string
}

func (p *parser) errorf(format string, args ...any) error {
	return &queryError{msg: fmt.Sprintf("invalid query at position %d: %s", p.pos, fmt.Sprintf(format, args...))}
}

func (p *parser) eof() bool  { return p.pos >= len(p.src) }
func (p *parser) peek() rune { return p.src[p.pos] }

func (p *parser) skipSpace() {
	for !p.eof() && unicode.IsSpace(p.peek()) {
		p.pos++
	}
}

// atOperator reports whether the keyword or symbol op starts at p.pos as a
// whole token.
func (p *parser) atOperator(op string) bool {
	n := len([]rune(op))
	if p.pos+n > len(p.src) || !strings.EqualFold(string(p.src[p.pos:p.pos+n]), op) {
		return false
	}
	if op == "&&" || op == "||" {
		return true
	}
	next := p.pos + n
	return next == len(p.src) || unicode.IsSpace(p.src[next]) || p.src[next] == '('
}

func (p *parser) operator(ops ...string) bool {
	for _, op := range ops {
		if p.atOperator(op) {
			p.pos += len([]rune(op))
			return true
		}
	}
	return false
}

func (p *parser) parseOr(field string) (node, error) {
	first, err := p.parseAnd(field)
	if err != nil {
		return nil, err
	}
	kids := []node{first}
	for {
		p.skipSpace()
		if !p.operator("OR", "||") {
			break
		}
		n, err := p.parseAnd(field)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return kids[0], nil
	}
	return orNode(kids), nil
}

func (p *parser) parseAnd(field string) (node, error) {
	first, err := p.parseUnary(field)
	if err != nil {
		return nil, err
	}
	kids := []node{first}
	for {
		p.skipSpace()
		if p.eof() || p.peek() == ')' || p.atOperator("OR") || p.atOperator("||") {
			break
		}
		p.operator("AND", "&&")
		n, err := p.parseUnary(field)
		if err != nil {
			return nil, err
		}
		kids = append(kids, n)
	}
	if len(kids) == 1 {
		return kids[0], nil
	}
	return andNode(kids), nil
}

func (p *parser) parseUnary(field string) (node, error) {
	p.skipSpace()
	if p.eof() {
		return nil, p.errorf("expected a term")
	}
	switch {
	case p.peek() == '-' || p.peek() == '!':
		p.pos++
		n, err := p.parseUnary(field)
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	case p.peek() == '+':
		p.pos++
		return p.parseUnary(field)
	case p.operator("NOT"):
		n, err := p.parseUnary(field)
		if err != nil {
			return nil, err
		}
		return notNode{n}, nil
	}
	return p.primary(field)
}

func (p *parser) primary(field string) (node, error) {
	switch p.peek() {
	case '(':
		p.pos++
		n, err := p.parseOr(field)
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.eof() || p.peek() != ')' {
			return nil, p.errorf("missing )")
		}
		p.pos++
		return n, nil
	case ')':
		return nil, p.errorf("unexpected )")
	}
	return p.clause(field)
}

func isFieldChar(r rune) bool {
	return r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// clause parses [field:]value; group is the field of an enclosing
// field:( ... ) group, or "".
func (p *parser) clause(group string) (node, error) {
	start := p.pos
	j := p.pos
	for j < len(p.src) && isFieldChar(p.src[j]) {
		j++
	}
	if j > p.pos && j < len(p.src) && p.src[j] == ':' {
		name := string(p.src[p.pos:j])
		k, ok := lookupField(name)
		if !ok {
			return nil, p.errorf("unknown field %q", name)
		}
		p.pos = j + 1
		return p.value(name, k, start)
	}
	if group != "" {
		k, _ := lookupField(group)
		return p.value(group, k, start)
	}
	return p.value("", kindString, start)
}

// value parses the value of field ("" for a bare term).
func (p *parser) value(field string, k kind, start int) (node, error) {
	if p.eof() || unicode.IsSpace(p.peek()) || p.peek() == ')' {
		return nil, p.errorf("missing value for field %q", field)
	}
	var (
		n   node
		err error
	)
	switch p.peek() {
	case '(':
		if field == "" {
			return nil, p.errorf("unexpected (")
		}
		p.pos++
		n, err = p.parseOr(field)
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.eof() || p.peek() != ')' {
			return nil, p.errorf("missing )")
		}
		p.pos++
		return n, nil
	case '"':
		text, qerr := p.quoted()
		if qerr != nil {
			return nil, qerr
		}
		n, err = p.term(field, k, text, "", false, true)
	case '[', '{':
		if field == "" {
			return nil, p.errorf("a range needs a field")
		}
		n, err = p.rangeValue(field, k)
	default:
		plain, pattern, glob, werr := p.word()
		if werr != nil {
			return nil, werr
		}
		n, err = p.term(field, k, plain, pattern, glob, false)
	}
	if err != nil {
		return nil, err
	}
	p.terms = append(p.terms, string(p.src[start:p.pos]))
	return n, nil
}

// quoted reads a "phrase" with \" and \\ escapes.
func (p *parser) quoted() (string, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for !p.eof() {
		r := p.peek()
		switch {
		case r == '\\' && p.pos+1 < len(p.src):
			b.WriteRune(p.src[p.pos+1])
			p.pos += 2
		case r == '"':
			p.pos++
			return b.String(), nil
		default:
			b.WriteRune(r)
			p.pos++
		}
	}
	return "", p.errorf("unterminated quoted phrase")
}

// specialChars may be escaped with a backslash in an unquoted value.
const specialChars = ` +-&|!(){}[]^"~*?:\/`

// word reads an unquoted value. It returns the value, its glob pattern
// (with \ escaping literal * ? \), and whether it has wildcards.
func (p *parser) word() (string, string, bool, error) {
	var plain, pattern strings.Builder
	glob := false
	for !p.eof() {
		r := p.peek()
		if unicode.IsSpace(r) || r == '(' || r == ')' {
			break
		}
		switch {
		case r == '\\' && p.pos+1 < len(p.src) && strings.ContainsRune(specialChars, p.src[p.pos+1]):
			nx := p.src[p.pos+1]
			plain.WriteRune(nx)
			if nx == '*' || nx == '?' || nx == '\\' {
				pattern.WriteRune('\\')
			}
			pattern.WriteRune(nx)
			p.pos += 2
			continue
		case r == '\\':
			plain.WriteRune(r)
			pattern.WriteString(`\\`)
		case r == '*' || r == '?':
			glob = true
			plain.WriteRune(r)
			pattern.WriteRune(r)
		case r == '^' || r == '~':
			return "", "", false, p.errorf("boosts (^) and fuzzy or proximity searches (~) are not supported")
		case strings.ContainsRune("[]{}", r):
			return "", "", false, p.errorf("unexpected %q", string(r))
		default:
			plain.WriteRune(r)
			pattern.WriteRune(r)
		}
		p.pos++
	}
	if plain.Len() == 0 {
		return "", "", false, p.errorf("expected a value")
	}
	return plain.String(), pattern.String(), glob, nil
}

// term builds field:value; field "" is a bare term.
func (p *parser) term(field string, k kind, text, pattern string, glob, phrase bool) (node, error) {
	if field == "" {
		switch {
		case !phrase && (text == "*" && glob || text == "*:*"):
			return matchAll{}, nil
		case !phrase && isHex(text, 32):
			return termNode{field: "md5", kind: kindString, text: strings.ToLower(text)}, nil
		}
		var or orNode
		for _, f := range defaultFields {
			fk, _ := lookupField(f)
			n, err := p.term(f, fk, text, pattern, glob, phrase)
			if err != nil {
				return nil, err
			}
			or = append(or, n)
		}
		return or, nil
	}
	if !phrase && glob && text == "*" {
		return existsNode{field: field}, nil
	}
	switch k {
	case kindInt:
		if glob {
			return nil, p.errorf("field %q is numeric: wildcards are not supported", field)
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, p.errorf("field %q is numeric: %q is not a number", field, text)
		}
		return termNode{field: field, kind: k, num: f}, nil
	case kindBool:
		switch strings.ToLower(text) {
		case "true":
			return termNode{field: field, kind: k, b: true}, nil
		case "false":
			return termNode{field: field, kind: k, b: false}, nil
		}
		return nil, p.errorf("field %q is boolean: %q is neither true nor false", field, text)
	case kindDate:
		if glob {
			return nil, p.errorf("field %q is a date: wildcards are not supported", field)
		}
		t, dateOnly, err := parseQueryTime(text)
		if err != nil {
			return nil, p.errorf("field %q is a date: %v", field, err)
		}
		if dateOnly {
			return rangeNode{field: field, kind: k, lo: bound{t: t, incl: true}, hi: bound{t: t.AddDate(0, 0, 1)}}, nil
		}
		return rangeNode{field: field, kind: k, lo: bound{t: t, incl: true}, hi: bound{t: t, incl: true}}, nil
	}
	return termNode{field: field, kind: k, text: strings.ToLower(text), pattern: strings.ToLower(pattern), glob: glob, phrase: phrase}, nil
}

// rangeValue parses [A TO B], {A TO B} or a mix of both brackets.
func (p *parser) rangeValue(field string, k kind) (node, error) {
	inclLo := p.peek() == '['
	p.pos++
	end := p.pos
	for end < len(p.src) && p.src[end] != ']' && p.src[end] != '}' {
		end++
	}
	if end == len(p.src) {
		return nil, p.errorf("unterminated range")
	}
	parts := strings.Fields(string(p.src[p.pos:end]))
	inclHi := p.src[end] == ']'
	if len(parts) != 3 || !strings.EqualFold(parts[1], "TO") {
		return nil, p.errorf("a range must read [A TO B]")
	}
	p.pos = end + 1
	if k == kindBool {
		return nil, p.errorf("field %q is boolean: ranges are not supported", field)
	}
	lo, err := p.bound(field, k, parts[0], inclLo, false)
	if err != nil {
		return nil, err
	}
	hi, err := p.bound(field, k, parts[2], inclHi, true)
	if err != nil {
		return nil, err
	}
	return rangeNode{field: field, kind: k, lo: lo, hi: hi}, nil
}

func (p *parser) bound(field string, k kind, s string, incl, upper bool) (bound, error) {
	if s == "*" {
		return bound{open: true}, nil
	}
	s = strings.Trim(s, `"`)
	switch k {
	case kindInt:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return bound{}, p.errorf("field %q is numeric: %q is not a number", field, s)
		}
		return bound{num: f, incl: incl}, nil
	case kindDate:
		t, dateOnly, err := parseQueryTime(s)
		if err != nil {
			return bound{}, p.errorf("field %q is a date: %v", field, err)
		}
		if dateOnly && upper && incl {
			// through the end of that day
			return bound{t: t.AddDate(0, 0, 1)}, nil
		}
		return bound{t: t, incl: incl}, nil
	}
	return bound{s: strings.ToLower(s), incl: incl}, nil
}

// parseQueryTime accepts 2006-01-02, 2006-01-02T15:04:05 with an optional
// fraction, and either with a Z or numeric zone; times without zone are UTC.
func parseQueryTime(s string) (time.Time, bool, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, false, nil
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", s); err == nil {
		return t, false, nil
	}
	return time.Time{}, false, fmt.Errorf("%q is not a date (want 2006-01-02 or 2006-01-02T15:04:05[.000][Z])", s)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpTime(a, b time.Time) int { return a.Compare(b) }

// lastComponent is the file name of a Windows or POSIX path.
func lastComponent(p string) string {
	if i := strings.LastIndexAny(p, `\/`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// splitWords splits on anything but letters and digits.
func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// containsSeq reports whether words contains seq as a contiguous run.
func containsSeq(words, seq []string) bool {
	if len(seq) == 0 {
		return false
	}
	for i := 0; i+len(seq) <= len(words); i++ {
		match := true
		for j := range seq {
			if words[i+j] != seq[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern: * any run, ? one rune, \ escapes.
func globMatch(pattern, s string) bool {
	pr, sr := []rune(pattern), []rune(s)
	var match func(pi, si int) bool
	match = func(pi, si int) bool {
		for pi < len(pr) {
			switch pr[pi] {
			case '*':
				for pi < len(pr) && pr[pi] == '*' {
					pi++
				}
				if pi == len(pr) {
					return true
				}
				for k := si; k <= len(sr); k++ {
					if match(pi, k) {
						return true
					}
				}
				return false
			case '?':
				if si >= len(sr) {
					return false
				}
			case '\\':
				if pi+1 < len(pr) {
					pi++
				}
				fallthrough
			default:
				if si >= len(sr) || sr[si] != pr[pi] {
					return false
				}
			}
			pi++
			si++
		}
		return si == len(sr)
	}
	return match(0, 0)
}
