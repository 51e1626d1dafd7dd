package opencti

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnrichEntityAccessors(t *testing.T) {
	e := Entity{Type: TypeStixFile, STIX: map[string]any{
		"name":                "x.exe",
		"hashes":              map[string]any{"sha256": "aa", "SHA-512": "bb", "md5": "cc"},
		"object_marking_refs": []any{tlpAmber, tlpGreen, tlpAmber},
	}}
	if got := e.Value(); got != "bb" {
		t.Errorf("Value = %q, want the SHA-512 (OpenCTI's observable_value order)", got)
	}
	if diff := cmp.Diff(map[string]string{"SHA-256": "aa", "SHA-512": "bb", "MD5": "cc"}, e.Hashes()); diff != "" {
		t.Errorf("Hashes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{tlpAmber, tlpGreen}, e.Markings()); diff != "" {
		t.Errorf("Markings (-want +got):\n%s", diff)
	}
	if got := (Entity{Type: TypeStixFile, STIX: map[string]any{"name": "n"}}).Value(); got != "n" {
		t.Errorf("Value without hashes = %q, want the name", got)
	}
	ind := Entity{Type: TypeIndicator, STIX: map[string]any{"pattern": "[x:y = 'z']"}}
	if got := ind.Value(); got != "[x:y = 'z']" {
		t.Errorf("Indicator Value = %q", got)
	}
}
