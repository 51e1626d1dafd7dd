package opencti

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/stix"
)

func TestIndicatorObservablesParsesPatterns(t *testing.T) {
	sha256 := strings.Repeat("ab", 32)
	md5 := strings.Repeat("cd", 16)
	sha1 := strings.Repeat("ef", 20)
	tests := []struct {
		name    string
		pattern string
		want    []string // "<type> <value or hashes>"
	}{
		{"file SHA-256", `[file:hashes.'SHA-256' = '` + sha256 + `']`, []string{"StixFile SHA-256=" + sha256}},
		{"file hashes in one observation merge", `[file:hashes.MD5 = '` + md5 + `' AND file:hashes.'SHA-1' = '` + sha1 + `']`, []string{"StixFile MD5=" + md5 + ",SHA-1=" + sha1}},
		{"file hashes with OR stay apart", `[file:hashes.MD5 = '` + md5 + `' OR file:hashes.'SHA-1' = '` + sha1 + `']`, []string{"StixFile MD5=" + md5, "StixFile SHA-1=" + sha1}},
		{"artifact", `[artifact:hashes.'SHA-256' = '` + sha256 + `']`, []string{"Artifact SHA-256=" + sha256}},
		{"two observations", `[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [url:value = 'http://x.example/']`, []string{"IPv4-Addr 1.2.3.4", "Url http://x.example/"}},
		{"escapes", `[url:value = 'http://x.example/it\'s\\here']`, []string{`Url http://x.example/it's\here`}},
		{"hostname and domain", `([hostname:value = 'h.example'] AND [domain-name:value = 'd.example']) WITHIN 300 SECONDS`, []string{"Hostname h.example", "Domain-Name d.example"}},
		{"duplicates once", `[domain-name:value = 'd.example'] OR [domain-name:value = 'd.example']`, []string{"Domain-Name d.example"}},
		{"unsupported comparisons skipped", `[ipv4-addr:value != '9.9.9.9' AND ipv4-addr:value NOT = '8.8.8.8' AND email-addr:value = 'a@b.c' AND ipv4-addr:value = '5.6.7.8' AND network-traffic:dst_port = 443]`, []string{"IPv4-Addr 5.6.7.8"}},
		{"lower-case hash name", `[file:hashes.'sha256' = '` + sha256 + `']`, []string{"StixFile SHA-256=" + sha256}},
		{"qualifiers and timestamps", `[url:value = 'http://q.example/'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'`, []string{"Url http://q.example/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ind := indicatorEntity(t, tt.pattern)
			obs, err := IndicatorObservables(ind)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range obs {
				desc := o.Type + " "
				if o.Type == TypeStixFile || o.Type == TypeArtifact {
					var parts []string
					for algo, v := range o.Hashes() {
						parts = append(parts, algo+"="+v)
					}
					slices.Sort(parts)
					desc += strings.Join(parts, ",")
				} else {
					desc += o.Value()
				}
				got = append(got, desc)
				if !slices.Equal(o.Markings(), []string{tlpRed()}) {
					t.Errorf("%s markings = %v, want the Indicator's", o.ID, o.Markings())
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("observables (-want +got):\n%s", diff)
			}
			checkIDs(t, append([]map[string]any{{}}, entitiesSTIX(obs)...))
		})
	}
}

func tlpRed() string { return stix.TLPRed.MarkingID() }

func entitiesSTIX(es []Entity) []map[string]any {
	out := make([]map[string]any, len(es))
	for i, e := range es {
		// Round-trip so numbers and lists have their decoded types.
		data, _ := json.Marshal(e.STIX)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		_ = dec.Decode(&out[i])
	}
	return out
}

func indicatorEntity(t *testing.T, pattern string) Entity {
	t.Helper()
	return mustEntity(t, TypeIndicator, map[string]any{
		"type": "indicator", "spec_version": "2.1", "id": stix.IndicatorID(pattern),
		"created": "2026-01-02T03:04:05.000Z", "modified": "2026-01-02T03:04:05.000Z", "valid_from": "2026-01-02T03:04:05.000Z",
		"pattern": pattern, "pattern_type": "stix", "object_marking_refs": []any{tlpRed()},
	})
}

func TestIndicatorObservablesErrors(t *testing.T) {
	tests := []struct {
		name, pattern, patternType, want string
	}{
		{"no supported observable", `[email-addr:value = 'a@b.c']`, "stix", "names no supported observable (found: email-addr"},
		{"only negated comparisons", `[ipv4-addr:value != '1.2.3.4']`, "stix", "names no supported observable"},
		{"YARA indicator", `rule x { condition: true }`, "yara", `pattern_type is "yara"`},
		{"unterminated string", `[url:value = 'http://x]`, "stix", "unterminated string literal"},
		{"bad escape", `[url:value = 'a\nb']`, "stix", "invalid escape"},
		{"unbalanced", `[url:value = 'a'`, "stix", "unbalanced ["},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ind := mustEntity(t, TypeIndicator, map[string]any{"type": "indicator", "id": stix.IndicatorID(tt.pattern), "pattern": tt.pattern, "pattern_type": tt.patternType})
			_, err := IndicatorObservables(ind)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := IndicatorObservables(valueObservable(t, TypeURL, "http://x/", nil, nil)); err == nil {
		t.Error("IndicatorObservables accepted an observable")
	}
}
