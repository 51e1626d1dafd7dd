package opencti

import (
	"testing"
)

func TestBuildDomainResolutionsSkipInvalidARecords(t *testing.T) {
	forEachVTSet(t, testBuildDomainResolutionsSkipInvalidARecords)
}

func testBuildDomainResolutionsSkipInvalidARecords(t *testing.T, set vtSet) {
	report := withAttributes(t, set.load(t, set.domain), func(a map[string]any) {
		a["last_dns_records"] = []any{
			map[string]any{"type": "A", "value": "999.1.1.1"},
			map[string]any{"type": "A", "value": "93.184.216.34"},
			map[string]any{"type": "A", "value": "93.184.216.34"},
			map[string]any{"type": "AAAA", "value": "2606:2800:220:1:248:1893:25c8:1946"},
			map[string]any{"type": "A", "value": "::1"},
			map[string]any{"type": "A"},
			"garbage",
		}
	})
	e := valueObservable(t, TypeDomainName, report.ID, []string{tlpGreen}, nil)
	out, err := Build(enrInput(e, report, nil))
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeObjects(t, out)
	ips := byType(objs, "ipv4-addr")
	if len(ips) != 1 || ips[0]["value"] != "93.184.216.34" {
		t.Errorf("IPv4 objects = %v, want only 93.184.216.34", ips)
	}
	if n := len(out.Warnings); n != 3 {
		t.Errorf("warnings = %q, want 3 (two invalid A records and one without value)", out.Warnings)
	}
	rels := byType(objs, "relationship")
	if len(rels) != 1 || rels[0]["relationship_type"] != "resolves-to" || rels[0]["source_ref"] != e.ID {
		t.Errorf("relationships = %v", rels)
	}
	validateObjects(t, out)
	checkMarkings(t, objs, []string{tlpGreen})
}
