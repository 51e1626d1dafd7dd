package stix

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPatternComparisonsReadsComparisons(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		want    []Comparison
	}{
		{"one equality", "[ipv4-addr:value = '1.2.3.4']", []Comparison{
			{Observation: 0, ObjectType: "ipv4-addr", Path: []string{"value"}, Op: "=", IsString: true, Value: "1.2.3.4"},
		}},
		{"quoted path component and == as =", "[file:hashes.'SHA-256' == 'aa']", []Comparison{
			{ObjectType: "file", Path: []string{"hashes", "SHA-256"}, Op: "=", IsString: true, Value: "aa"},
		}},
		{"OR marks its observation only", "[file:hashes.MD5 = 'a' OR file:hashes.'SHA-1' = 'b'] AND [url:value = 'u']", []Comparison{
			{Observation: 0, HasOr: true, ObjectType: "file", Path: []string{"hashes", "MD5"}, Op: "=", IsString: true, Value: "a"},
			{Observation: 0, HasOr: true, ObjectType: "file", Path: []string{"hashes", "SHA-1"}, Op: "=", IsString: true, Value: "b"},
			{Observation: 1, ObjectType: "url", Path: []string{"value"}, Op: "=", IsString: true, Value: "u"},
		}},
		{"negation, other operators and non-string literals", "[ipv4-addr:value NOT = 'x' AND network-traffic:dst_port > 443 AND file:name LIKE 'a%' AND ipv4-addr:value != '9.9.9.9']", []Comparison{
			{ObjectType: "ipv4-addr", Path: []string{"value"}, Negated: true, Op: "=", IsString: true, Value: "x"},
			{ObjectType: "network-traffic", Path: []string{"dst_port"}, Op: ">"},
			{ObjectType: "file", Path: []string{"name"}, Op: "LIKE", IsString: true, Value: "a%"},
			{ObjectType: "ipv4-addr", Path: []string{"value"}, Op: "!=", IsString: true, Value: "9.9.9.9"},
		}},
		{"escapes are undone", `[url:value = 'http://x.example/it\'s\\here']`, []Comparison{
			{ObjectType: "url", Path: []string{"value"}, Op: "=", IsString: true, Value: `http://x.example/it's\here`},
		}},
		{"list index in a path", "[email-message:to_refs[*].value = 'a@b.c']", []Comparison{
			{ObjectType: "email-message", Path: []string{"to_refs", "[*]", "value"}, Op: "=", IsString: true, Value: "a@b.c"},
		}},
		{"qualifiers and nested observations", "([hostname:value = 'h'] FOLLOWEDBY [domain-name:value = 'd']) WITHIN 300 SECONDS START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'", []Comparison{
			{Observation: 0, ObjectType: "hostname", Path: []string{"value"}, Op: "=", IsString: true, Value: "h"},
			{Observation: 1, ObjectType: "domain-name", Path: []string{"value"}, Op: "=", IsString: true, Value: "d"},
		}},
		{"no observation", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PatternComparisons(tt.pattern)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("PatternComparisons(%s) (-want +got):\n%s", tt.pattern, diff)
			}
		})
	}
}

func TestPatternComparisonsErrors(t *testing.T) {
	tests := []struct{ name, pattern, want string }{
		{"unterminated string", "[url:value = 'http://x]", "unterminated string literal"},
		{"unterminated timestamp", "[url:value = 'a'] START t'2016", "unterminated string literal"},
		{"bad escape", `[url:value = 'a\nb']`, "invalid escape"},
		{"unbalanced [", "[url:value = 'a'", "unbalanced ["},
		{"unbalanced ]", "url:value = 'a']", "unbalanced ]"},
		{"lone !", "[url:value ! 'a']", `unexpected "!" at offset 11`},
		{"unexpected character", "[url:value = 'a'] ; drop", "unexpected character ';' at offset 18"},
		{"no property", "[url: = 'a']", "object path of url has no property"},
		{"no operator", "[url:value]", "comparison on url:value has no operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PatternComparisons(tt.pattern)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("PatternComparisons(%s) = %+v, %v; want an error containing %q", tt.pattern, got, err, tt.want)
			}
		})
	}
}

// TestPatternComparisonsReadsTheBuilders checks that the reader gives back
// the values the builders escaped, however hostile.
func TestPatternComparisonsReadsTheBuilders(t *testing.T) {
	for _, v := range []string{
		"",
		`http://evil.example/a'b\c?q=x' OR '1'='1`,
		`http://a/\'] AND [url:value = 'x`,
		"line1\nline2\r\n\tend",
		"https://例え.テスト/ü?q=a'b",
	} {
		for _, p := range []string{URLPattern(v), FileHashPattern(HashSHA256, v)} {
			got, err := PatternComparisons(p)
			if err != nil || len(got) != 1 || !got[0].IsString || got[0].Value != v {
				t.Errorf("PatternComparisons(%s) = %+v, %v; want one comparison with value %q", p, got, err, v)
			}
		}
	}
}
