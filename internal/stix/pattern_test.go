package stix

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
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
			cmps, err := parseStrictPattern(p)
			if err != nil {
				t.Errorf("%s(%q) = %s: not a valid pattern: %v", objectType, v, p, err)
				continue
			}
			want := []strictComparison{{objectType: objectType, path: []string{"value"}, op: "=", value: v}}
			if !slices.EqualFunc(cmps, want, strictComparison.equal) {
				t.Errorf("%s(%q) = %s parses as %+v, want %+v", objectType, v, p, cmps, want)
			}
			lit := p[strings.Index(p, " = ")+3 : len(p)-1]
			if !stringLiteralRule.MatchString(lit) {
				t.Errorf("%s: literal %s does not match the StringLiteral rule", p, lit)
			}
		}
		cmps, err := parseStrictPattern(FileHashPattern(HashSHA256, v))
		if err != nil || len(cmps) != 1 || cmps[0].value != v || !slices.Equal(cmps[0].path, []string{"hashes", "SHA-256"}) {
			t.Errorf("FileHashPattern(%q) parses as %+v, %v", v, cmps, err)
		}
	}
}
