package stix

import (
	"strings"
	"unicode"
)

// NormalizeName lower-cases and trims s exactly as the OpenCTI platform's
// normalizeName does before hashing names into ids (JavaScript
// toLowerCase followed by trim): full Unicode lower-casing, including the
// two context-free special cases Go's unicode.ToLower maps differently
// (U+0130 İ becomes "i̇", and a word-final Σ becomes ς), then removal of
// leading and trailing JavaScript white space (which includes U+FEFF but not
// U+0085). pycti's name.lower().strip() agrees for every name that does not
// start or end with one of the few characters whose white-space status
// differs between Python and JavaScript.
func NormalizeName(s string) string {
	return strings.TrimFunc(jsToLower(s), isJSSpace)
}

// isJSSpace reports whether r is ECMAScript WhiteSpace or LineTerminator,
// the set String.prototype.trim removes.
func isJSSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', '\u2028', '\u2029', '\uFEFF':
		return true
	}
	return unicode.Is(unicode.Zs, r)
}

// isPySpace reports whether r is white space for Python's str.strip().
func isPySpace(r rune) bool {
	switch {
	case r >= '\t' && r <= '\r', r >= 0x1c && r <= 0x1f, r == 0x85, r == '\u2028', r == '\u2029':
		return true
	}
	return unicode.Is(unicode.Zs, r)
}

// pyStrip trims s as Python's str.strip() does; pycti applies it to patterns
// and note contents before hashing them.
func pyStrip(s string) string {
	return strings.TrimFunc(s, isPySpace)
}

// jsToLower is String.prototype.toLowerCase: Unicode full case mapping.
func jsToLower(s string) string {
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range rs {
		switch {
		case r == '\u0130': // LATIN CAPITAL LETTER I WITH DOT ABOVE
			b.WriteString("i\u0307")
		case r == '\u03A3' && isFinalSigma(rs, i): // GREEK CAPITAL LETTER SIGMA
			b.WriteRune('\u03C2')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// isFinalSigma implements Unicode's Final_Sigma condition: the sigma at i is
// preceded by a cased letter and not followed by one, ignoring
// case-ignorable characters in between.
func isFinalSigma(rs []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0; j-- {
		if isCaseIgnorable(rs[j]) {
			continue
		}
		before = isCased(rs[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(rs); j++ {
		if isCaseIgnorable(rs[j]) {
			continue
		}
		return !isCased(rs[j])
	}
	return true
}

func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

func isCaseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', '^', '`', '\u00B7', '\u2018', '\u2019', '\u2024', '\u2027', '\uFE13', '\uFE52', '\uFE55', '\uFF07', '\uFF0E', '\uFF1A':
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}
