package stix

import (
	"errors"
	"fmt"
	"strings"
)

// This file reads STIX patterns, the counterpart of the builders in
// pattern.go: which comparisons does a pattern make?

// Comparison is one comparison (the grammar's propTest) of a STIX
// pattern, as PatternComparisons reads it.
type Comparison struct {
	Observation int      // index of the enclosing [ ] observation expression, from 0
	HasOr       bool     // that observation expression contains OR
	ObjectType  string   // "file"
	Path        []string // ["hashes", "SHA-256"]
	Negated     bool     // NOT precedes the operator
	Op          string   // "=" (also for "=="), "!=", "<", "IN", "LIKE", …
	IsString    bool     // the right-hand side is a string literal
	Value       string   // the unescaped string literal
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

// PatternComparisons extracts the comparisons of a STIX pattern. It is a
// tolerant reader, not a validator: it follows the token stream, tracks
// which observation expression "[…]" each comparison is in and whether that
// expression contains an OR, and reads "objectType:path [NOT] op literal"
// sequences. Tokens follow the lexer rules of STIXPattern.g4; string
// literals are unescaped (\' and \\, the grammar's only escapes). Errors
// say what is wrong without a package prefix, for the caller to wrap with
// the pattern it read.
func PatternComparisons(pattern string) ([]Comparison, error) {
	toks, err := lexPattern(pattern)
	if err != nil {
		return nil, err
	}
	var (
		out         []Comparison
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
			c.Observation = observation
			out = append(out, c)
			i = next - 1
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced [")
	}
	for i := range out {
		out[i].HasOr = hasOr[out[i].Observation]
	}
	return out, nil
}

// readComparison reads "type : path… [NOT] op value" from toks[i] and
// returns it with the index of the first token after it.
func readComparison(toks []patternToken, i int) (Comparison, int, error) {
	c := Comparison{ObjectType: toks[i].text}
	j := i + 2
	// First path component: identifier or string.
	if j >= len(toks) || toks[j].kind != tokWord && toks[j].kind != tokString {
		return c, 0, fmt.Errorf("object path of %s has no property", c.ObjectType)
	}
	c.Path = append(c.Path, toks[j].text)
	j++
	for j < len(toks) {
		t := toks[j]
		if t.kind == tokPunct && t.text == "." && j+1 < len(toks) && (toks[j+1].kind == tokWord || toks[j+1].kind == tokString) {
			c.Path = append(c.Path, toks[j+1].text)
			j += 2
			continue
		}
		if t.kind == tokPunct && t.text == "[" && j+2 < len(toks) && toks[j+2].kind == tokPunct && toks[j+2].text == "]" {
			c.Path = append(c.Path, "["+toks[j+1].text+"]")
			j += 3
			continue
		}
		break
	}
	if j < len(toks) && toks[j].kind == tokWord && toks[j].text == "NOT" {
		c.Negated = true
		j++
	}
	if j >= len(toks) {
		return c, 0, fmt.Errorf("comparison on %s:%s has no operator", c.ObjectType, strings.Join(c.Path, "."))
	}
	switch op := toks[j]; op.kind {
	case tokOp:
		c.Op = op.text
		if c.Op == "==" {
			c.Op = "="
		}
	case tokWord:
		c.Op = op.text // IN, LIKE, MATCHES, ISSUBSET, ISSUPERSET
	default:
		return c, 0, fmt.Errorf("comparison on %s:%s has no operator", c.ObjectType, strings.Join(c.Path, "."))
	}
	j++
	if j < len(toks) && toks[j].kind == tokString {
		c.IsString, c.Value = true, toks[j].text
		j++
	}
	return c, j, nil
}
