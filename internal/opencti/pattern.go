package opencti

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// This file reads the two kinds of pattern the enrichment meets: the STIX
// pattern of an Indicator being enriched (which observables does it name?)
// and the crowdsourced YARA rulesets VirusTotal matched on a file (which
// text is the one rule that matched?).

// IndicatorObservables returns the observables the STIX pattern of an
// Indicator entity names, as synthetic entities the caller passes to
// LookupFor and, one at a time, to Build as Input.Entity (with
// Input.Indicator = e). Each has the deterministic STIX id of its type, its
// value (or hashes) and the Indicator's markings.
//
// The pattern is tokenised per STIXPattern.g4 and every comparison
// "<object>:<path> = '<string>'" (not negated) on a supported path is kept:
// file:hashes.'SHA-256' / 'SHA-1' / MD5 (StixFile), artifact:hashes.…
// (Artifact, which the original connector did not support, §10.13),
// ipv4-addr:value, domain-name:value, hostname:value and url:value. String
// literals are unescaped (\' and \\). File or artifact hashes compared in
// the same observation expression "[…]" with no OR describe one file and
// are merged. Observables are returned in pattern order, without
// duplicates. It fails when the entity is not a STIX-pattern Indicator,
// when the pattern does not tokenise, or when it names no supported
// observable.
func IndicatorObservables(e Entity) ([]Entity, error) {
	if e.Type != TypeIndicator {
		return nil, fmt.Errorf("opencti: indicator observables: entity %s is a %s, not an Indicator", e.ID, e.Type)
	}
	pattern, _ := e.STIX["pattern"].(string)
	if pt, ok := e.STIX["pattern_type"].(string); ok && pt != "" && !strings.EqualFold(pt, stix.PatternTypeSTIX) {
		return nil, fmt.Errorf("opencti: Cannot enrich Indicator %s: its pattern_type is %q; only STIX patterns name observables", e.ID, pt)
	}
	comparisons, err := patternComparisons(pattern)
	if err != nil {
		return nil, fmt.Errorf("opencti: Cannot enrich Indicator %s: pattern %q: %w", e.ID, pattern, err)
	}
	markings := e.Markings()
	var (
		out     []Entity
		seen    = map[string]bool{}
		found   []string
		skipped []string
	)
	add := func(ent Entity) {
		if !seen[ent.ID] {
			seen[ent.ID] = true
			out = append(out, ent)
		}
	}
	// Pending merged file hashes per observation expression.
	type fileGroup struct {
		obsType string
		hashes  stix.Hashes
	}
	var pending []*fileGroup // merged hashes of the current observation, per object type
	flush := func() {
		for _, g := range pending {
			if ent, err := hashEntity(g.obsType, g.hashes, markings); err == nil {
				add(ent)
			}
		}
		pending = nil
	}
	lastObs := -1
	for _, c := range comparisons {
		if c.observation != lastObs {
			flush()
			lastObs = c.observation
		}
		found = append(found, c.objectType)
		if c.negated || c.op != "=" || !c.isString {
			continue
		}
		switch c.objectType {
		case "file", "artifact":
			algo, ok := hashAlgorithm(c.path)
			if !ok || c.value == "" {
				skipped = append(skipped, c.objectType+":"+strings.Join(c.path, "."))
				continue
			}
			if c.hasOr {
				if ent, err := hashEntity(c.objectType, stix.Hashes{algo: c.value}, markings); err == nil {
					add(ent)
				}
				continue
			}
			i := slices.IndexFunc(pending, func(g *fileGroup) bool { return g.obsType == c.objectType })
			if i < 0 {
				pending = append(pending, &fileGroup{obsType: c.objectType, hashes: stix.Hashes{}})
				i = len(pending) - 1
			}
			if _, dup := pending[i].hashes[algo]; !dup {
				pending[i].hashes[algo] = c.value
			}
		case "ipv4-addr", "domain-name", "hostname", "url":
			if len(c.path) != 1 || c.path[0] != "value" || c.value == "" {
				skipped = append(skipped, c.objectType+":"+strings.Join(c.path, "."))
				continue
			}
			add(valueEntity(c.objectType, c.value, markings))
		default:
			skipped = append(skipped, c.objectType)
		}
	}
	flush()
	if len(out) == 0 {
		slices.Sort(found)
		found = slices.Compact(found)
		if len(found) == 0 {
			found = []string{"none"}
		}
		return nil, fmt.Errorf("opencti: Cannot enrich Indicator %s: its pattern names no supported observable (found: %s; supported: file and artifact hashes (SHA-256, SHA-1, MD5), ipv4-addr:value, domain-name:value, hostname:value, url:value compared with =)",
			e.ID, strings.Join(found, ", "))
	}
	return out, nil
}

// hashAlgorithm recognises hashes.<algo> paths for the three hashes
// VirusTotal looks files up by, returning the STIX algorithm name.
func hashAlgorithm(path []string) (string, bool) {
	if len(path) != 2 || path[0] != "hashes" {
		return "", false
	}
	switch canonicalHashName(path[1]) {
	case stix.HashSHA256:
		return stix.HashSHA256, true
	case stix.HashSHA1:
		return stix.HashSHA1, true
	case stix.HashMD5:
		return stix.HashMD5, true
	}
	return "", false
}

// observableTypes maps the STIX types IndicatorObservables produces to
// OpenCTI entity types.
var observableTypes = map[string]string{
	"file":        TypeStixFile,
	"artifact":    TypeArtifact,
	"ipv4-addr":   TypeIPv4Addr,
	"domain-name": TypeDomainName,
	"hostname":    TypeHostname,
	"url":         TypeURL,
}

func valueEntity(stixType, value string, markings []string) Entity {
	id := stix.ObservableValueID(stixType, value)
	obj := map[string]any{"type": stixType, "spec_version": stix.SpecVersion, "id": id, "value": value}
	if len(markings) > 0 {
		obj["object_marking_refs"] = stringsToAny(markings)
	}
	return Entity{ID: id, Type: observableTypes[stixType], STIX: obj}
}

func hashEntity(stixType string, hashes stix.Hashes, markings []string) (Entity, error) {
	var (
		id  string
		err error
	)
	if stixType == "artifact" {
		id, err = stix.ArtifactID(hashes, "")
	} else {
		id, err = stix.FileID(hashes, "")
	}
	if err != nil {
		return Entity{}, err
	}
	h := make(map[string]any, len(hashes))
	for k, v := range hashes {
		h[k] = v
	}
	obj := map[string]any{"type": stixType, "spec_version": stix.SpecVersion, "id": id, "hashes": h}
	if len(markings) > 0 {
		obj["object_marking_refs"] = stringsToAny(markings)
	}
	return Entity{ID: id, Type: observableTypes[stixType], STIX: obj}, nil
}

// comparison is one propTest of a STIX pattern.
type comparison struct {
	observation int      // index of the enclosing [ ] observation expression
	hasOr       bool     // that observation expression contains OR
	objectType  string   // "file"
	path        []string // ["hashes", "SHA-256"]
	negated     bool
	op          string // "=", "!=", "<", "IN", "LIKE", …
	isString    bool   // the right-hand side is a string literal
	value       string // unescaped string literal
}

type patternTokenKind int

const (
	tokWord    patternTokenKind = iota // identifiers and keywords
	tokString                          // '…' (text is unescaped)
	tokLiteral                         // numbers, t'…', h'…', b'…'
	tokOp                              // = == != <> < <= > >=
	tokPunct                           // [ ] ( ) : . , *
)

type patternToken struct {
	kind patternTokenKind
	text string
}

var errUnterminatedString = errors.New("unterminated string literal")

// lexPattern splits a STIX pattern into tokens.
func lexPattern(p string) ([]patternToken, error) {
	var toks []patternToken
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '\'':
			s, n, err := readStringLiteral(p[i:])
			if err != nil {
				return nil, err
			}
			toks = append(toks, patternToken{tokString, s})
			i += n
		case (c == 't' || c == 'h' || c == 'b') && i+1 < len(p) && p[i+1] == '\'':
			j := strings.IndexByte(p[i+2:], '\'')
			if j < 0 {
				return nil, errUnterminatedString
			}
			toks = append(toks, patternToken{tokLiteral, p[i : i+3+j]})
			i += 3 + j
		case isIdentStart(c):
			j := i + 1
			for j < len(p) && (isIdentStart(p[j]) || p[j] >= '0' && p[j] <= '9' || p[j] == '-') {
				j++
			}
			toks = append(toks, patternToken{tokWord, p[i:j]})
			i = j
		case c >= '0' && c <= '9' || c == '+' || c == '-' && i+1 < len(p) && (p[i+1] >= '0' && p[i+1] <= '9' || p[i+1] == '.'):
			j := i + 1
			for j < len(p) && (p[j] >= '0' && p[j] <= '9' || p[j] == '.') {
				j++
			}
			toks = append(toks, patternToken{tokLiteral, p[i:j]})
			i = j
		case c == '=' || c == '!' || c == '<' || c == '>':
			j := i + 1
			if j < len(p) && (p[j] == '=' || c == '<' && p[j] == '>') {
				j++
			}
			op := p[i:j]
			if op == "!" {
				return nil, fmt.Errorf("unexpected %q at offset %d", op, i)
			}
			toks = append(toks, patternToken{tokOp, op})
			i = j
		case strings.IndexByte("[]():.,*", c) >= 0:
			toks = append(toks, patternToken{tokPunct, string(c)})
			i++
		default:
			return nil, fmt.Errorf("unexpected character %q at offset %d", c, i)
		}
	}
	return toks, nil
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// readStringLiteral reads the StringLiteral at the start of s (which begins
// with a quote) and returns its unescaped value and its length in s. The
// grammar allows exactly two escapes, \' and \\.
func readStringLiteral(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\'':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 >= len(s) || s[i+1] != '\'' && s[i+1] != '\\' {
				return "", 0, fmt.Errorf("invalid escape in string literal %q: only \\' and \\\\ are allowed", s)
			}
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, errUnterminatedString
}

// patternComparisons extracts the comparisons of a STIX pattern. It is a
// tolerant reader, not a validator: it follows the token stream, tracks
// which observation expression "[…]" each comparison is in and whether that
// expression contains an OR, and reads "objectType:path [NOT] op literal"
// sequences.
func patternComparisons(pattern string) ([]comparison, error) {
	toks, err := lexPattern(pattern)
	if err != nil {
		return nil, err
	}
	var (
		out         []comparison
		observation = -1
		depth       int // [ ] nesting of observation expressions
		hasOr       = map[int]bool{}
	)
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case t.kind == tokPunct && t.text == "[":
			if depth == 0 {
				observation++
			}
			depth++
		case t.kind == tokPunct && t.text == "]":
			if depth == 0 {
				return nil, errors.New("unbalanced ]")
			}
			depth--
		case t.kind == tokWord && t.text == "OR" && depth > 0:
			hasOr[observation] = true
		case t.kind == tokWord && depth > 0 && i+1 < len(toks) && toks[i+1].kind == tokPunct && toks[i+1].text == ":":
			c, next, err := readComparison(toks, i)
			if err != nil {
				return nil, err
			}
			c.observation = observation
			out = append(out, c)
			i = next - 1
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced [")
	}
	for i := range out {
		out[i].hasOr = hasOr[out[i].observation]
	}
	return out, nil
}

// readComparison reads "type : path… [NOT] op value" from toks[i] and
// returns it with the index of the first token after it.
func readComparison(toks []patternToken, i int) (comparison, int, error) {
	c := comparison{objectType: toks[i].text}
	j := i + 2
	// First path component: identifier or string.
	if j >= len(toks) || toks[j].kind != tokWord && toks[j].kind != tokString {
		return c, 0, fmt.Errorf("object path of %s has no property", c.objectType)
	}
	c.path = append(c.path, toks[j].text)
	j++
	for j < len(toks) {
		t := toks[j]
		if t.kind == tokPunct && t.text == "." && j+1 < len(toks) && (toks[j+1].kind == tokWord || toks[j+1].kind == tokString) {
			c.path = append(c.path, toks[j+1].text)
			j += 2
			continue
		}
		if t.kind == tokPunct && t.text == "[" && j+2 < len(toks) && toks[j+2].kind == tokPunct && toks[j+2].text == "]" {
			c.path = append(c.path, "["+toks[j+1].text+"]")
			j += 3
			continue
		}
		break
	}
	if j < len(toks) && toks[j].kind == tokWord && toks[j].text == "NOT" {
		c.negated = true
		j++
	}
	if j >= len(toks) {
		return c, 0, fmt.Errorf("comparison on %s:%s has no operator", c.objectType, strings.Join(c.path, "."))
	}
	switch op := toks[j]; op.kind {
	case tokOp:
		c.op = op.text
		if c.op == "==" {
			c.op = "="
		}
	case tokWord:
		c.op = op.text // IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET
	default:
		return c, 0, fmt.Errorf("comparison on %s:%s has no operator", c.objectType, strings.Join(c.path, "."))
	}
	j++
	if j < len(toks) && toks[j].kind == tokString {
		c.isString, c.value = true, toks[j].text
		j++
	}
	return c, j, nil
}

// YARA rulesets.

var yaraImport = regexp.MustCompile(`(?m)^[ \t]*import[ \t]+"([^"\n]+)"[ \t]*$`)

// extractYARARule returns the text of the rule called name in a ruleset,
// verbatim from its modifiers ("private", "global") or "rule" keyword to
// its closing brace, preceded by the ruleset's import lines for the
// modules the rule uses (OpenCTI refuses rules whose modules are not
// imported, compare connectors#2898). The original connector instead
// re-serialised the rule with plyara, so the indicator pattern, and the
// indicator id derived from it, differ from the original's. ok is false
// when the ruleset has no such rule or the rule's braces do not balance.
func extractYARARule(rules, name string) (string, bool) {
	start, end, ok := findYARARule(rules, name)
	if !ok {
		return "", false
	}
	text := rules[start:end]
	var imports []string
	for _, m := range yaraImport.FindAllStringSubmatch(rules, -1) {
		module := m[1]
		used := regexp.MustCompile(`(^|[^A-Za-z0-9_$])` + regexp.QuoteMeta(module) + `\.`)
		if used.MatchString(text) && !slices.Contains(imports, module) {
			imports = append(imports, module)
		}
	}
	if len(imports) == 0 {
		return text, true
	}
	var b strings.Builder
	for _, m := range imports {
		fmt.Fprintf(&b, "import %q\n", m)
	}
	b.WriteString("\n")
	b.WriteString(text)
	return b.String(), true
}

// findYARARule locates rule name at the top level of rules and returns the
// byte range of its text. Rule bodies are skipped as a whole (with their
// comments, strings and regular expressions), so text inside another rule
// cannot be mistaken for a declaration.
func findYARARule(rules, name string) (start, end int, ok bool) {
	s := yaraScanner{src: rules}
	for {
		word, at, found := s.nextTopLevelWord()
		if !found {
			return 0, 0, false
		}
		if word != "rule" {
			continue
		}
		ident, _, found := s.nextTopLevelWord()
		if !found {
			return 0, 0, false
		}
		open := s.skipToByte('{')
		if open < 0 {
			return 0, 0, false
		}
		closing := s.matchBrace(open)
		if closing < 0 {
			return 0, 0, false
		}
		if ident == name {
			return modifiersStart(rules, at), closing + 1, true
		}
		s.pos = closing + 1
	}
}

// modifiersStart moves back from the "rule" keyword at over the rule
// modifiers that precede it.
func modifiersStart(src string, at int) int {
	start := at
	for {
		i := start
		for i > 0 && (src[i-1] == ' ' || src[i-1] == '\t' || src[i-1] == '\n' || src[i-1] == '\r') {
			i--
		}
		matched := false
		for _, m := range []string{"private", "global"} {
			if strings.HasSuffix(src[:i], m) && (i == len(m) || !isYARAIdentByte(src[i-len(m)-1])) {
				start = i - len(m)
				matched = true
				break
			}
		}
		if !matched {
			return start
		}
	}
}

func isYARAIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// yaraScanner walks YARA source skipping comments, text strings and
// regular expressions.
type yaraScanner struct {
	src string
	pos int
}

// skipTrivia skips a comment or string starting at pos and reports whether
// it did.
func (s *yaraScanner) skipTrivia() bool {
	src, i := s.src, s.pos
	switch {
	case strings.HasPrefix(src[i:], "//"):
		if j := strings.IndexByte(src[i:], '\n'); j >= 0 {
			s.pos = i + j + 1
		} else {
			s.pos = len(src)
		}
		return true
	case strings.HasPrefix(src[i:], "/*"):
		if j := strings.Index(src[i+2:], "*/"); j >= 0 {
			s.pos = i + 2 + j + 2
		} else {
			s.pos = len(src)
		}
		return true
	case src[i] == '"':
		s.pos = skipDelimited(src, i, '"')
		return true
	}
	return false
}

// skipDelimited returns the index after the closing delim of the literal
// opened at i, honouring backslash escapes (end of input if unterminated).
func skipDelimited(src string, i int, delim byte) int {
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			j++
		case delim:
			return j + 1
		case '\n':
			if delim == '/' { // regular expressions do not span lines
				return j
			}
		}
	}
	return len(src)
}

// nextTopLevelWord returns the next identifier outside comments and
// strings, and its offset.
func (s *yaraScanner) nextTopLevelWord() (string, int, bool) {
	for s.pos < len(s.src) {
		if s.skipTrivia() {
			continue
		}
		c := s.src[s.pos]
		if isYARAIdentByte(c) {
			start := s.pos
			for s.pos < len(s.src) && isYARAIdentByte(s.src[s.pos]) {
				s.pos++
			}
			// Identifiers glued to $, #, @, ! are string references, not words.
			if start > 0 && strings.IndexByte("$#@!", s.src[start-1]) >= 0 {
				continue
			}
			return s.src[start:s.pos], start, true
		}
		s.pos++
	}
	return "", 0, false
}

// skipToByte advances to the next c outside comments and strings and
// returns its offset, or -1.
func (s *yaraScanner) skipToByte(c byte) int {
	for s.pos < len(s.src) {
		if s.skipTrivia() {
			continue
		}
		if s.src[s.pos] == c {
			s.pos++
			return s.pos - 1
		}
		s.pos++
	}
	return -1
}

// matchBrace returns the offset of the brace closing the one at open,
// skipping comments, strings and regular expressions (which may contain
// unbalanced braces), or -1.
func (s *yaraScanner) matchBrace(open int) int {
	s.pos = open + 1
	depth := 1
	prev := byte('{') // last significant byte, to tell regexps from division
	prevWord := ""
	for s.pos < len(s.src) {
		if s.skipTrivia() {
			continue
		}
		c := s.src[s.pos]
		switch {
		case c == '/' && (prev == '=' || prevWord == "matches"):
			s.pos = skipDelimited(s.src, s.pos, '/')
			prev, prevWord = '/', ""
			continue
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return s.pos
			}
		case isYARAIdentByte(c):
			start := s.pos
			for s.pos < len(s.src) && isYARAIdentByte(s.src[s.pos]) {
				s.pos++
			}
			prev, prevWord = 'a', s.src[start:s.pos]
			continue
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			prev, prevWord = c, ""
		}
		s.pos++
	}
	return -1
}
