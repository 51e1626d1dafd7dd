package stix

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPatternBuilders(t *testing.T) {
	const sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct{ got, want string }{
		{IPv4Pattern("1.2.3.4"), "[ipv4-addr:value = '1.2.3.4']"},
		{IPv6Pattern("2001:db8::1"), "[ipv6-addr:value = '2001:db8::1']"},
		{DomainNamePattern("example.com"), "[domain-name:value = 'example.com']"},
		{HostnamePattern("www.example.com"), "[hostname:value = 'www.example.com']"},
		{URLPattern("https://example.com/it's"), `[url:value = 'https://example.com/it\'s']`},
		{URLPattern(`http://x/a\b`), `[url:value = 'http://x/a\\b']`},
		{FileHashPattern(HashSHA256, sha256), "[file:hashes.'SHA-256' = '" + sha256 + "']"},
		{FileHashPattern(HashSHA1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"), "[file:hashes.'SHA-1' = 'da39a3ee5e6b4b0d3255bfef95601890afd80709']"},
		{FileHashPattern(HashMD5, "d41d8cd98f00b204e9800998ecf8427e"), "[file:hashes.MD5 = 'd41d8cd98f00b204e9800998ecf8427e']"},
		{QuoteString(""), "''"},
		{QuoteString(`'\`), `'\'\\'`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got  %s\nwant %s", tt.got, tt.want)
		}
	}
	// The indicator id of the builder's output is the §9.3 golden vector.
	if got := IndicatorID(IPv4Pattern("1.2.3.4")); got != "indicator--274128a4-2ad4-50b5-ae7b-b0dea1fa9861" {
		t.Errorf("IndicatorID(IPv4Pattern) = %s", got)
	}
}

// stringLiteralRule is STIXPattern.g4's lexer rule
//
//	StringLiteral : QUOTE ( ~['\\] | '\\\'' | '\\\\' )* QUOTE ;
//
// transcribed as a regular expression.
var stringLiteralRule = regexp.MustCompile(`^'(?:[^'\\]|\\'|\\\\)*'$`)

// TestStringLiteralRuleMatchesGrammar makes sure the transcription above is
// the rule in the shared grammar file.
func TestStringLiteralRuleMatchesGrammar(t *testing.T) {
	g, err := os.ReadFile(sharedFile(t, "spec/STIXPattern.g4"))
	if err != nil {
		t.Fatal(err)
	}
	const rule = `StringLiteral :
  QUOTE ( ~['\\] | '\\\'' | '\\\\' )* QUOTE
  ;`
	if !strings.Contains(string(g), rule) {
		t.Fatalf("STIXPattern.g4 no longer contains the StringLiteral rule\n%s", rule)
	}
}

func TestPatternEscapingOfTrickyValues(t *testing.T) {
	values := []string{
		"",
		"https://example.com/it's",
		`C:\Windows\System32\evil.exe`,
		`http://example.com/trailing\`,
		`\'`,
		`''`,
		`\\\'\\'`,
		`http://a/'] OR [ipv4-addr:value = '1.2.3.4`,
		`http://a/\'] AND [url:value = 'x`,
		"line1\nline2\r\n\tend",
		"https://例え.テスト/ü?q=a'b",
		"/* not a comment */ // nor this",
	}
	builders := map[string]func(string) string{
		"ipv4-addr":   IPv4Pattern,
		"domain-name": DomainNamePattern,
		"hostname":    HostnamePattern,
		"url":         URLPattern,
	}
	for _, v := range values {
		for objectType, build := range builders {
			p := build(v)
			cmps, err := parsePattern(p)
			if err != nil {
				t.Errorf("%s(%q) = %s: not a valid pattern: %v", objectType, v, p, err)
				continue
			}
			want := []comparison{{objectType: objectType, path: []string{"value"}, op: "=", value: v}}
			if !slices.EqualFunc(cmps, want, comparison.equal) {
				t.Errorf("%s(%q) = %s parses as %+v, want %+v", objectType, v, p, cmps, want)
			}
			lit := p[strings.Index(p, " = ")+3 : len(p)-1]
			if !stringLiteralRule.MatchString(lit) {
				t.Errorf("%s: literal %s does not match the StringLiteral rule", p, lit)
			}
		}
		cmps, err := parsePattern(FileHashPattern(HashSHA256, v))
		if err != nil || len(cmps) != 1 || cmps[0].value != v || !slices.Equal(cmps[0].path, []string{"hashes", "SHA-256"}) {
			t.Errorf("FileHashPattern(%q) parses as %+v, %v", v, cmps, err)
		}
	}
}

// TestPatternValidator checks the test's own validator on patterns the
// grammar accepts and rejects.
func TestPatternValidator(t *testing.T) {
	valid := []string{
		"[ipv4-addr:value = '1.2.3.4']",
		"[file:hashes.'SHA-256' = 'aa' OR file:hashes.MD5 = 'bb']",
		"[ file:name == 'a' AND (file:size != 'x') ]",
		`[url:value NOT = 'it\'s']`,
		"[x-custom:'a b'.c = '']",
	}
	for _, p := range valid {
		if _, err := parsePattern(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	invalid := []string{
		"[url:value = 'it's']",         // unescaped quote
		`[url:value = 'a\b']`,          // \b is not an escape
		`[url:value = 'a\']`,           // escaped closing quote
		"[url:value = 'a'",             // unclosed bracket
		"[url:value = 'a'] garbage",    // trailing tokens
		"[url-x:my-prop = 'a']",        // hyphen in a property name
		"[url:value = 'a' OR]",         // dangling OR
		"[url:value = a]",              // unquoted value
		"url:value = 'a'",              // no observation brackets
		"[url:value = 'a'] OR [url:x]", // only one observation supported here
	}
	for _, p := range invalid {
		if _, err := parsePattern(p); err == nil {
			t.Errorf("%s: accepted", p)
		}
	}
}

// comparison is one propTest of a parsed pattern, with decoded strings.
type comparison struct {
	objectType string
	path       []string
	op         string
	value      string
}

func (c comparison) equal(d comparison) bool {
	return c.objectType == d.objectType && slices.Equal(c.path, d.path) && c.op == d.op && c.value == d.value
}

// parsePattern parses the subset of STIXPattern.g4 the connector emits: one
// observation expression "[ comparisonExpression ]" whose comparisons are
// objectPath NOT? (=|==|!=|<>) StringLiteral, joined by AND / OR and
// parentheses. Tokens follow the grammar's lexer rules (keywords before
// identifiers, longest match, white space skipped).
func parsePattern(s string) ([]comparison, error) {
	toks, err := lexPattern(s)
	if err != nil {
		return nil, err
	}
	p := &patternParser{toks: toks}
	if err := p.expect("["); err != nil {
		return nil, err
	}
	cmps, err := p.comparisonExpression()
	if err != nil {
		return nil, err
	}
	if err := p.expect("]"); err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q after the observation", p.toks[p.pos].text)
	}
	return cmps, nil
}

type token struct {
	kind string // "[", "]", "(", ")", ":", ".", "EQ", "NEQ", "AND", "OR", "NOT", "STRING", "ID", "IDH"
	text string // the literal's decoded value for STRING
}

var patternKeywords = map[string]bool{"AND": true, "OR": true, "NOT": true, "FOLLOWEDBY": true, "LIKE": true, "MATCHES": true, "ISSUPERSET": true, "ISSUBSET": true, "EXISTS": true, "LAST": true, "IN": true, "START": true, "STOP": true, "SECONDS": true, "true": true, "false": true, "WITHIN": true, "REPEATS": true, "TIMES": true}

func isPatternSpace(r rune) bool {
	return strings.ContainsRune(" \t\r\n\v\f\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000", r)
}

func lexPattern(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case isPatternSpace(r):
			i += size
		case strings.ContainsRune("[]():.", r):
			toks = append(toks, token{kind: string(r), text: string(r)})
			i++
		case strings.HasPrefix(s[i:], "=="):
			toks = append(toks, token{kind: "EQ", text: "="})
			i += 2
		case r == '=':
			toks = append(toks, token{kind: "EQ", text: "="})
			i++
		case strings.HasPrefix(s[i:], "!="), strings.HasPrefix(s[i:], "<>"):
			toks = append(toks, token{kind: "NEQ", text: "!="})
			i += 2
		case r == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return nil, errors.New("unterminated string literal")
				}
				if s[j] == '\'' {
					j++
					break
				}
				if s[j] == '\\' {
					if j+1 < len(s) && (s[j+1] == '\'' || s[j+1] == '\\') {
						b.WriteByte(s[j+1])
						j += 2
						continue
					}
					return nil, fmt.Errorf("invalid escape at offset %d", j)
				}
				b.WriteByte(s[j])
				j++
			}
			toks = append(toks, token{kind: "STRING", text: b.String()})
			i = j
		case r == '_' || r < utf8.RuneSelf && (r|0x20 >= 'a' && r|0x20 <= 'z'):
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '-' || s[j] >= '0' && s[j] <= '9' || s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z') {
				j++
			}
			word := s[i:j]
			switch {
			case patternKeywords[word]:
				toks = append(toks, token{kind: word, text: word})
			case strings.Contains(word, "-"):
				toks = append(toks, token{kind: "IDH", text: word})
			default:
				toks = append(toks, token{kind: "ID", text: word})
			}
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", r, i)
		}
	}
	return toks, nil
}

type patternParser struct {
	toks []token
	pos  int
}

func (p *patternParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos].kind
	}
	return "EOF"
}

func (p *patternParser) next() token {
	t := p.toks[p.pos]
	p.pos++
	return t
}

func (p *patternParser) expect(kind string) error {
	if p.peek() != kind {
		return fmt.Errorf("want %s, got %s", kind, p.peek())
	}
	p.pos++
	return nil
}

func (p *patternParser) comparisonExpression() ([]comparison, error) {
	cmps, err := p.comparisonAnd()
	for err == nil && p.peek() == "OR" {
		p.pos++
		var more []comparison
		more, err = p.comparisonAnd()
		cmps = append(cmps, more...)
	}
	return cmps, err
}

func (p *patternParser) comparisonAnd() ([]comparison, error) {
	cmps, err := p.propTest()
	for err == nil && p.peek() == "AND" {
		p.pos++
		var more []comparison
		more, err = p.propTest()
		cmps = append(cmps, more...)
	}
	return cmps, err
}

func (p *patternParser) propTest() ([]comparison, error) {
	if p.peek() == "(" {
		p.pos++
		cmps, err := p.comparisonExpression()
		if err != nil {
			return nil, err
		}
		return cmps, p.expect(")")
	}
	var c comparison
	switch p.peek() {
	case "ID", "IDH":
		c.objectType = p.next().text
	default:
		return nil, fmt.Errorf("want an object type, got %s", p.peek())
	}
	if err := p.expect(":"); err != nil {
		return nil, err
	}
	switch p.peek() {
	case "ID", "STRING":
		c.path = append(c.path, p.next().text)
	default:
		return nil, fmt.Errorf("want a property name, got %s", p.peek())
	}
	for p.peek() == "." {
		p.pos++
		switch p.peek() {
		case "ID", "STRING":
			c.path = append(c.path, p.next().text)
		default:
			return nil, fmt.Errorf("want a property name, got %s", p.peek())
		}
	}
	if p.peek() == "NOT" {
		p.pos++
		c.op = "NOT "
	}
	switch p.peek() {
	case "EQ", "NEQ":
		c.op += p.next().text
	default:
		return nil, fmt.Errorf("want = or !=, got %s", p.peek())
	}
	if p.peek() != "STRING" {
		return nil, fmt.Errorf("want a string literal, got %s", p.peek())
	}
	c.value = p.next().text
	return []comparison{c}, nil
}
