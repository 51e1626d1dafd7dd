package opencti

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

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
