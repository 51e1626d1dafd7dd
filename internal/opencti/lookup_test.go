package opencti

import (
	"errors"
	"strings"
	"testing"

	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestEnrichLookupFor(t *testing.T) {
	sha256 := strings.Repeat("AB", 32)
	md5 := strings.Repeat("c", 32)
	tests := []struct {
		name    string
		entity  Entity
		want    Lookup
		wantErr string
	}{
		{"SHA-256 first, lower-cased", Entity{Type: TypeStixFile, STIX: map[string]any{"hashes": map[string]any{"MD5": md5, "SHA-256": sha256}}}, Lookup{vt.KindFile, strings.ToLower(sha256)}, ""},
		{"MD5 when alone", Entity{Type: TypeArtifact, STIX: map[string]any{"hashes": map[string]any{"md5": md5}}}, Lookup{vt.KindFile, md5}, ""},
		{"SHA-1", Entity{Type: TypeStixFile, STIX: map[string]any{"hashes": map[string]any{"SHA-1": strings.Repeat("d", 40), "SHA-512": strings.Repeat("e", 128)}}}, Lookup{vt.KindFile, strings.Repeat("d", 40)}, ""},
		{"SHA-512 only", Entity{Type: TypeStixFile, STIX: map[string]any{"hashes": map[string]any{"SHA-512": strings.Repeat("e", 128)}, "name": "x.exe"}}, Lookup{}, "Unable to enrich the observable: it has no SHA-256, SHA-1, or MD5 hash."},
		{"malformed hash", Entity{Type: TypeStixFile, STIX: map[string]any{"hashes": map[string]any{"SHA-256": "../../etc/passwd"}}}, Lookup{}, "is not a hexadecimal SHA-256"},
		{"IPv4", Entity{Type: TypeIPv4Addr, STIX: map[string]any{"value": " 8.8.8.8 "}}, Lookup{vt.KindIP, "8.8.8.8"}, ""},
		{"IPv4 network", Entity{Type: TypeIPv4Addr, STIX: map[string]any{"value": "10.0.0.0/8"}}, Lookup{}, "not a single IPv4 address"},
		{"IPv6 in an IPv4-Addr", Entity{Type: TypeIPv4Addr, STIX: map[string]any{"value": "::1"}}, Lookup{}, "not a single IPv4 address"},
		{"domain lower-cased", Entity{Type: TypeDomainName, STIX: map[string]any{"value": "Example.COM."}}, Lookup{vt.KindDomain, "example.com"}, ""},
		{"hostname uses the domain endpoint", Entity{Type: TypeHostname, STIX: map[string]any{"value": "www.example.com"}}, Lookup{vt.KindDomain, "www.example.com"}, ""},
		{"domain with a slash", Entity{Type: TypeDomainName, STIX: map[string]any{"value": "a/b.example"}}, Lookup{}, "not allowed"},
		{"URL as is", Entity{Type: TypeURL, STIX: map[string]any{"value": "http://x.example/a?b"}}, Lookup{vt.KindURL, "http://x.example/a?b"}, ""},
		{"empty URL", Entity{Type: TypeURL, STIX: map[string]any{"value": " "}}, Lookup{}, "empty value"},
		{"indicator", Entity{Type: TypeIndicator, STIX: map[string]any{}}, Lookup{}, "IndicatorObservables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LookupFor(tt.entity)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("LookupFor = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := LookupFor(Entity{Type: TypeStixFile, STIX: map[string]any{}}); !errors.Is(err, ErrNoHash) {
		t.Errorf("err = %v, want ErrNoHash", err)
	}
}
