package stix

import (
	"math"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"keys sorted, no whitespace", map[string]any{"value": "x", "name": "y", "hashes": map[string]any{"SHA-256": "a", "MD5": "b"}}, `{"hashes":{"MD5":"b","SHA-256":"a"},"name":"y","value":"x"}`},
		{"keys sorted by UTF-16 code units", map[string]any{"\uFFFD": 1, "\U0001F600": 2, "a": 3}, `{"a":3,"😀":2,"�":1}`},
		{"only JSON's mandatory escapes", "\x00\x1f\x7f\u2028é\"\\\b\f\n\r\t<>&", `"\u0000\u001f` + "\x7f\u2028é" + `\"\\\b\f\n\r\t<>&"`},
		{"invalid UTF-8 becomes U+FFFD", "a\xffb", "\"a\uFFFDb\""},
		{"integers", []any{int64(15169), 0, -1, uint64(math.MaxUint64)}, `[15169,0,-1,18446744073709551615]`},
		{"string lists", []string{"b", "a"}, `["b","a"]`},
		{"literals", []any{nil, true, false}, `[null,true,false]`},
		{"empty containers", []any{map[string]any{}, []any{}}, `[{},[]]`},
		{"string maps", map[string]string{"b": "1", "a": "2"}, `{"a":"2","b":"1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canonicalJSON(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestCanonicalNumbers uses the ECMAScript number serialisation examples of
// RFC 8785 (appendix B and section 3.2.2.3).
func TestCanonicalNumbers(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{math.Copysign(0, -1), "0"},
		{1, "1"},
		{-1.5, "-1.5"},
		{4.5, "4.5"},
		{0.002, "0.002"},
		{0.000001, "0.000001"},
		{1e-7, "1e-7"},
		{0.30000000000000004, "0.30000000000000004"},
		{333333333.33333329, "333333333.3333333"},
		{1e21, "1e+21"},
		{1e23, "1e+23"},
		{123456789012345680000, "123456789012345680000"},
		{9007199254740992, "9007199254740992"},
		{5e-324, "5e-324"},
		{1.7976931348623157e308, "1.7976931348623157e+308"},
		{-1.2345e-10, "-1.2345e-10"},
		{48.8566, "48.8566"},
	}
	for _, tt := range tests {
		got, err := formatES6Number(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("formatES6Number(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		if _, err := canonicalJSON(bad); err == nil {
			t.Errorf("canonicalJSON(%v) succeeded", bad)
		}
	}
	if _, err := canonicalJSON(struct{}{}); err == nil {
		t.Error("canonicalJSON(struct{}{}) succeeded")
	}
	if _, err := GenerateID("x", map[string]any{"f": math.NaN()}); err == nil {
		t.Error("GenerateID with NaN succeeded")
	}
}
