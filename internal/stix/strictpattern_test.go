package stix

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// This file is the strict reader of STIX patterns that the builder tests
// check the builders' output against: an independent transcription of
// the subset of STIXPattern.g4 the connector emits, deliberately separate
// from the tolerant PatternComparisons.

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
		if _, err := parseStrictPattern(p); err != nil {
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
		if _, err := parseStrictPattern(p); err == nil {
			t.Errorf("%s: accepted", p)
		}
	}
}

// strictComparison is one propTest of a parsed pattern, with decoded strings.
type strictComparison struct {
	objectType string
	path       []string
	op         string
	value      string
}

func (c strictComparison) equal(d strictComparison) bool {
	return c.objectType == d.objectType && slices.Equal(c.path, d.path) && c.op == d.op && c.value == d.value
}

// parseStrictPattern parses the subset of STIXPattern.g4 the connector emits: one
// observation expression "[ comparisonExpression ]" whose comparisons are
// objectPath NOT? (=|==|!=|<>) StringLiteral, joined by AND / OR and
// parentheses. Tokens follow the grammar's lexer rules (keywords before
// identifiers, longest match, white space skipped).
func parseStrictPattern(s string) ([]strictComparison, error) {
	toks, err := lexStrictPattern(s)
	if err != nil {
		return nil, err
	}
	p := &strictParser{toks: toks}
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

type strictToken struct {
	kind string // "[", "]", "(", ")", ":", ".", "EQ", "NEQ", "AND", "OR", "NOT", "STRING", "ID", "IDH"
	text string // the literal's decoded value for STRING
}

var patternKeywords = map[string]bool{"AND": true, "OR": true, "NOT": true, "FOLLOWEDBY": true, "LIKE": true, "MATCHES": true, "ISSUPERSET": true, "ISSUBSET": true, "EXISTS": true, "LAST": true, "IN": true, "START": true, "STOP": true, "SECONDS": true, "true": true, "false": true, "WITHIN": true, "REPEATS": true, "TIMES": true}

func isPatternSpace(r rune) bool {
	return strings.ContainsRune(" \t\r\n\v\f\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000", r)
}

func lexStrictPattern(s string) ([]strictToken, error) {
	var toks []strictToken
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case isPatternSpace(r):
			i += size
		case strings.ContainsRune("[]():.", r):
			toks = append(toks, strictToken{kind: string(r), text: string(r)})
			i++
		case strings.HasPrefix(s[i:], "=="):
			toks = append(toks, strictToken{kind: "EQ", text: "="})
			i += 2
		case r == '=':
			toks = append(toks, strictToken{kind: "EQ", text: "="})
			i++
		case strings.HasPrefix(s[i:], "!="), strings.HasPrefix(s[i:], "<>"):
			toks = append(toks, strictToken{kind: "NEQ", text: "!="})
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
			toks = append(toks, strictToken{kind: "STRING", text: b.String()})
			i = j
		case r == '_' || r < utf8.RuneSelf && (r|0x20 >= 'a' && r|0x20 <= 'z'):
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] == '-' || s[j] >= '0' && s[j] <= '9' || s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z') {
				j++
			}
			word := s[i:j]
			switch {
			case patternKeywords[word]:
				toks = append(toks, strictToken{kind: word, text: word})
			case strings.Contains(word, "-"):
				toks = append(toks, strictToken{kind: "IDH", text: word})
			default:
				toks = append(toks, strictToken{kind: "ID", text: word})
			}
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at offset %d", r, i)
		}
	}
	return toks, nil
}

type strictParser struct {
	toks []strictToken
	pos  int
}

func (p *strictParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos].kind
	}
	return "EOF"
}

func (p *strictParser) next() strictToken {
	t := p.toks[p.pos]
	p.pos++
	return t
}

func (p *strictParser) expect(kind string) error {
	if p.peek() != kind {
		return fmt.Errorf("want %s, got %s", kind, p.peek())
	}
	p.pos++
	return nil
}

func (p *strictParser) comparisonExpression() ([]strictComparison, error) {
	cmps, err := p.comparisonAnd()
	for err == nil && p.peek() == "OR" {
		p.pos++
		var more []strictComparison
		more, err = p.comparisonAnd()
		cmps = append(cmps, more...)
	}
	return cmps, err
}

func (p *strictParser) comparisonAnd() ([]strictComparison, error) {
	cmps, err := p.propTest()
	for err == nil && p.peek() == "AND" {
		p.pos++
		var more []strictComparison
		more, err = p.propTest()
		cmps = append(cmps, more...)
	}
	return cmps, err
}

func (p *strictParser) propTest() ([]strictComparison, error) {
	if p.peek() == "(" {
		p.pos++
		cmps, err := p.comparisonExpression()
		if err != nil {
			return nil, err
		}
		return cmps, p.expect(")")
	}
	var c strictComparison
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
	return []strictComparison{c}, nil
}
