package stix

import (
	"testing"
)

// FuzzPatternComparisons: any pattern is read or refused without a panic,
// and every value a builder quotes reads back unchanged.
func FuzzPatternComparisons(f *testing.F) {
	for _, s := range []string{
		"[file:hashes.'SHA-256' = 'abc']", "[ipv4-addr:value = '1.2.3.4'] OR [domain-name:value = 'x']",
		"[url:value = 'http://x/?a=\\'b\\'']", "[file:name NOT LIKE 'a%'] WITHIN 5 SECONDS", "[x:y = '", "[a:b IN ('1','2')]",
		"[file:size > 10 AND file:name = h'00ff']",
	} {
		f.Add(s, "http://evil.example/'] OR [x:y = '1")
	}
	f.Fuzz(func(t *testing.T, pattern, value string) {
		_, _ = PatternComparisons(pattern)
		for _, built := range []string{URLPattern(value), DomainNamePattern(value), EqualityPattern("file", []string{"name"}, value)} {
			cs, err := PatternComparisons(built)
			if err != nil {
				t.Fatalf("the builder's pattern %q does not read: %v", built, err)
			}
			if len(cs) != 1 || !cs[0].IsString || cs[0].Value != value {
				t.Fatalf("value %q quoted as %q reads back as %+v", value, built, cs)
			}
		}
	})
}
