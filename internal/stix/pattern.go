package stix

import (
	"regexp"
	"strings"
)

// QuoteString returns s as a STIX pattern string literal: between single
// quotes, with every backslash and single quote escaped by a backslash, the
// only two escapes the StringLiteral rule of STIXPattern.g4 has (and what
// the stix2 library writes). Any other character, including newlines, stands
// for itself.
func QuoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}

// identifier is the grammar's IdentifierWithoutHyphen: a path component that
// needs no quoting.
var identifier = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// pathComponent writes one object-path component, quoting it when it is not
// a plain identifier (hashes.'SHA-256' but hashes.MD5, as the stix2 library
// does).
func pathComponent(name string) string {
	if identifier.MatchString(name) {
		return name
	}
	return QuoteString(name)
}

// EqualityPattern returns the one-comparison pattern
// "[<objectType>:<p1>.<p2>… = '<value>']", quoting path components that are
// not plain identifiers and escaping value with QuoteString.
func EqualityPattern(objectType string, path []string, value string) string {
	var b strings.Builder
	b.WriteByte('[')
	b.WriteString(objectType)
	b.WriteByte(':')
	for i, p := range path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(pathComponent(p))
	}
	b.WriteString(" = ")
	b.WriteString(QuoteString(value))
	b.WriteByte(']')
	return b.String()
}

// IPv4Pattern returns [ipv4-addr:value = '<value>'].
func IPv4Pattern(value string) string {
	return EqualityPattern("ipv4-addr", []string{"value"}, value)
}

// IPv6Pattern returns [ipv6-addr:value = '<value>'].
func IPv6Pattern(value string) string {
	return EqualityPattern("ipv6-addr", []string{"value"}, value)
}

// DomainNamePattern returns [domain-name:value = '<value>']. The original
// connector also uses it for Hostname observables.
func DomainNamePattern(value string) string {
	return EqualityPattern("domain-name", []string{"value"}, value)
}

// HostnamePattern returns [hostname:value = '<value>'], OpenCTI's pattern
// for its custom Hostname observable (pycti create_stix_pattern).
func HostnamePattern(value string) string {
	return EqualityPattern("hostname", []string{"value"}, value)
}

// URLPattern returns [url:value = '<value>'].
func URLPattern(value string) string {
	return EqualityPattern("url", []string{"value"}, value)
}

// FileHashPattern returns [file:hashes.<algorithm> = '<hash>'], e.g.
// [file:hashes.'SHA-256' = '…'] or [file:hashes.MD5 = '…'].
func FileHashPattern(algorithm, hash string) string {
	return EqualityPattern("file", []string{"hashes", algorithm}, hash)
}
