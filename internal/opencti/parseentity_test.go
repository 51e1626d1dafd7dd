package opencti

import (
	"errors"
	"strings"
	"testing"

	"github.com/vtconnector/vtconnector/internal/stix"
)

func TestParseEntityErrors(t *testing.T) {
	ipID := stix.IPv4AddrID("1.2.3.4")
	tests := []struct {
		name, id, typ, stix, want string
	}{
		{"unsupported type", ipID, "IPv6-Addr", `{}`, "IPv6-Addr is not a supported entity type."},
		{"empty entity id", "", TypeIPv4Addr, `{}`, "entity_id is empty"},
		{"entity id not a STIX id", "1.2.3.4", TypeIPv4Addr, `{}`, "is not a STIX id"},
		{"empty stix_entity", ipID, TypeIPv4Addr, ``, "stix_entity is empty"},
		{"null stix_entity", ipID, TypeIPv4Addr, `null`, "stix_entity is empty"},
		{"not JSON", ipID, TypeIPv4Addr, `{"type":`, "stix_entity"},
		{"a list", ipID, TypeIPv4Addr, `[1]`, "not a JSON object"},
		{"trailing data", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4"} {}`, "data after the JSON object"},
		{"wrong type", ipID, TypeIPv4Addr, `{"type":"file","id":"` + ipID + `","value":"1.2.3.4"}`, `stix_entity.type: "file", want "ipv4-addr"`},
		{"id mismatch", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000000","value":"1.2.3.4"}`, "stix_entity.id"},
		{"missing value", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `"}`, "stix_entity.value: missing"},
		{"value not a string", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":42}`, "stix_entity.value: want a string, got a number"},
		{"bad marking", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","object_marking_refs":["TLP:RED"]}`, "object_marking_refs[0]"},
		{"score out of range", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","x_opencti_score":101}`, "x_opencti_score"},
		{"score a string", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","x_opencti_score":"90"}`, "x_opencti_score: want a number"},
		{"extension score", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","extensions":{"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82":{"score":true}}}`, `extensions["extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"].score`},
		{"extension labels", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","extensions":{"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82":{"labels":"x"}}}`, "labels: want a list"},
		{"hashes not strings", stix.URLID("x"), TypeStixFile, `{"type":"file","id":"` + stix.URLID("x") + `","hashes":{"MD5":5}}`, `hashes["MD5"]: want a string`},
		{"indicator without pattern", stix.IndicatorID("x"), TypeIndicator, `{"type":"indicator","id":"` + stix.IndicatorID("x") + `"}`, "stix_entity.pattern: missing"},
		{"external references not objects", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","external_references":["x"]}`, "external_references[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEntity(tt.id, tt.typ, []byte(tt.stix))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	var ute *UnsupportedTypeError
	if _, err := ParseEntity(ipID, "Malware", []byte(`{}`)); !errors.As(err, &ute) || ute.Type != "Malware" {
		t.Errorf("err = %v, want an UnsupportedTypeError", err)
	}
}

func TestParseEntityKeepsUnknownFields(t *testing.T) {
	const src = `{"type":"url","spec_version":"2.1","id":"url--33333333-3333-4333-8333-333333333333","value":"https://malicious.example","x_opencti_custom":{"n":12345678901234567890,"f":1.50},"extensions":{"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82":{"extension_type":"property-extension","id":"8c555399","created_at":"2024-01-01T00:00:00.000Z"}}}`
	e, err := ParseEntity("url--33333333-3333-4333-8333-333333333333", TypeURL, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	data, err := marshalObject(e.STIX)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`12345678901234567890`, `1.50`, `"created_at":"2024-01-01T00:00:00.000Z"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s lost %s", data, want)
		}
	}
}
