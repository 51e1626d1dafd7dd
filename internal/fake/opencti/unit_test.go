package opencti

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// Tests in this file need no RabbitMQ.

func TestSplitBundleLikePycti(t *testing.T) {
	forEachBundleSet(t, testSplitBundleLikePycti)
}

func testSplitBundleLikePycti(t *testing.T, set bundleSet) {
	b := set.loadBundle(t, set.splitSample)
	pieces := splitBundle(b)
	var got []splitPiece
	for _, p := range pieces {
		objs := p["objects"].([]any)
		if len(objs) != 1 || p["id"] != b["id"] || p["type"] != "bundle" || p["spec_version"] != "2.1" || p["x_opencti_seq"] != objs[0].(map[string]any)["nb_deps"] {
			t.Fatalf("piece %v", p)
		}
		o := objs[0].(map[string]any)
		got = append(got, splitPiece{o["id"].(string), o["nb_deps"].(int)})
	}
	if diff := cmp.Diff(set.splitWant, got); diff != "" {
		t.Errorf("split order (-want +got):\n%s", diff)
	}
	// The marking's self reference is cut; refs outside the bundle stay.
	for _, p := range pieces {
		o := p["objects"].([]any)[0].(map[string]any)
		switch o["type"] {
		case "marking-definition":
			if o["created_by_ref"] != nil {
				t.Errorf("self reference kept: %v", o["created_by_ref"])
			}
		case "report":
			if refs := o["object_refs"].([]any); len(refs) != 2 {
				t.Errorf("report object_refs %v", refs)
			}
		}
	}
	// Unsupported types and relationships without ends are dropped.
	odd := map[string]any{"type": "bundle", "id": "bundle--1", "objects": []any{
		map[string]any{"type": "x-custom", "id": "x-custom--" + uuidV4()},
		map[string]any{"type": "relationship", "id": "relationship--" + uuidV4(), "relationship_type": "related-to", "source_ref": nil, "target_ref": "url--" + uuidV4()},
		map[string]any{"type": "url", "id": "url--" + uuidV4(), "value": "http://x"},
	}}
	if got := splitBundle(odd); len(got) != 1 {
		t.Errorf("split of unsupported objects: %v", got)
	}
}

func TestStandardIDMatchesTheReferenceVectors(t *testing.T) {
	tests := []struct {
		obj  map[string]any
		want string
	}{
		{map[string]any{"type": "indicator", "pattern": "[ipv4-addr:value = '1.2.3.4']"}, "indicator--274128a4-2ad4-50b5-ae7b-b0dea1fa9861"},
		{map[string]any{"type": "campaign", "name": "attack"}, "campaign--25f21617-8de8-5d5e-8cd4-b7e88547ba76"},
		{map[string]any{"type": "note", "content": "My note content!"}, "note--2b4ab5af-2307-58e1-8862-a6a269aae798"},
		{map[string]any{"type": "note", "content": "My note content!", "created": "2022-11-25T19:00:05.000Z"}, "note--10861e5c-049e-54f6-9736-81c106e39a0b"},
		{map[string]any{"type": "relationship", "relationship_type": "based-on", "source_ref": "from_id", "target_ref": "to_id"}, "relationship--0b11fa67-da01-5d34-9864-67d4d71c3740"},
		{map[string]any{"type": "relationship", "relationship_type": "based-on", "source_ref": "from_id", "target_ref": "to_id",
			"start_time": "2022-11-25T19:00:05.000Z", "stop_time": "2022-11-26T19:00:05.000Z"}, "relationship--a7778a7d-a743-5193-9912-89f88f9ed0b4"},
		{map[string]any{"type": "sighting", "sighting_of_ref": "from_id", "where_sighted_refs": []any{"to_id"}}, "sighting--161901df-21bb-527a-b96b-354119279fe2"},
		{map[string]any{"type": "identity", "name": "filigran", "identity_class": "organization"}, "identity--8cb00c79-ab20-5ed4-b37d-337241b96a29"},
		{map[string]any{"type": "location", "name": "france", "x_opencti_location_type": "Country"}, "location--b8d0549f-de06-5ebd-a6e9-d31a581dba5d"},
		{map[string]any{"type": "autonomous-system", "number": 15169.0}, "autonomous-system--7afc7bdf-d070-5add-90ff-f93503b1654d"},
		{map[string]any{"type": "ipv4-addr", "value": "1.2.3.4"}, "ipv4-addr--0198f97b-e65d-5025-87e5-58bc39d4bdb4"},
		{map[string]any{"type": "file", "hashes": map[string]any{"MD5": "d41d8cd98f00b204e9800998ecf8427e"}, "name": "x"}, "file--02fff920-f614-527c-81d1-6353633a6d21"},
		{map[string]any{"type": "artifact", "hashes": map[string]any{"SHA-256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}, "artifact--22f8ff52-8f62-5f03-a53a-6f50f54fd74c"},
		{map[string]any{"type": "external-reference", "source_name": "mitre-attack", "external_id": "T1059"}, "external-reference--aecbe091-f97b-5cc7-8b42-ee9efb0c4a9f"},
	}
	for _, tt := range tests {
		got, err := standardID(tt.obj)
		if err != nil || got != tt.want {
			t.Errorf("standardID(%v) = %s, %v; want %s", tt.obj, got, err, tt.want)
		}
	}
	if _, err := standardID(map[string]any{"type": "file"}); !errors.Is(err, errNoIDProperties) {
		t.Errorf("file without hashes or name: %v", err)
	}
	if _, err := standardID(map[string]any{"type": "x-custom"}); !errors.Is(err, errNotDeterministic) {
		t.Errorf("custom type: %v", err)
	}
}

func TestCheckIDSyntax(t *testing.T) {
	for id, ok := range map[string]bool{
		"indicator--274128a4-2ad4-50b5-ae7b-b0dea1fa9861": true,
		"indicator--1234":                              false,
		"identity--not-available":                      false,
		"report--274128a4-2ad4-50b5-ae7b-b0dea1fa9861": false, // not its type
		"274128a4-2ad4-50b5-ae7b-b0dea1fa9861":         false,
	} {
		if err := checkIDSyntax("indicator", id); (err == nil) != ok {
			t.Errorf("checkIDSyntax(indicator, %s): %v", id, err)
		}
	}
}

func TestInspectPrintsLikeGraphQLJS(t *testing.T) {
	v, err := decodeOrdered([]byte(`{"id":"x","scope":["a","b"],"n":1.5,"deep":{"a":{"b":{"c":1}}},"e":{},"l":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{ id: "x", scope: ["a", "b"], n: 1.5, deep: { a: [Object] }, e: {}, l: [] }`
	if got := inspect(v); got != want {
		t.Errorf("inspect = %s\nwant      %s", got, want)
	}
	long, _ := decodeOrdered([]byte(`[1,2,3,4,5,6,7,8,9,10,11,12]`))
	if got := inspect(long); got != "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ... 2 more items]" {
		t.Errorf("inspect long list = %s", got)
	}
}

func TestVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"6.8.10", "6.8.9", 1}, {"6.7.20", "6.8.9", -1}, {"6.8.9", "6.8.9", 0},
		{"7.260817.0", "6.9.0", 1}, {"6.9.0-rc1", "6.9.0", 0}, {"6.9", "6.9.0", 0},
	}
	for _, tt := range tests {
		a, err1 := parseVersion(tt.a)
		b, err2 := parseVersion(tt.b)
		if err1 != nil || err2 != nil || compareVersions(a, b) != tt.want {
			t.Errorf("compare(%s, %s) = %d (%v %v), want %d", tt.a, tt.b, compareVersions(a, b), err1, err2, tt.want)
		}
	}
	for _, bad := range []string{"", "x.y", "6..1", "v6.8"} {
		if _, err := parseVersion(bad); err == nil {
			t.Errorf("parseVersion(%q) accepted", bad)
		}
	}
}

func TestPatternObservables(t *testing.T) {
	got := patternObservables(`[file:hashes.'SHA-256' = 'aa' OR file:hashes.MD5 = 'bb'] AND [domain-name:value = 'it\'s.example']`)
	want := []observableValue{
		{typ: "StixFile", value: "aa", hashes: [][2]string{{"SHA-256", "aa"}}},
		{typ: "StixFile", value: "bb", hashes: [][2]string{{"MD5", "bb"}}},
		{typ: "Domain-Name", value: "it's.example"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(observableValue{})); diff != "" {
		t.Errorf("patternObservables (-want +got):\n%s", diff)
	}
}

func TestEntityExport(t *testing.T) {
	score := 42
	e := &entity{
		Entity: Entity{Type: "Hostname", Value: "www.example.com", Markings: []string{stix.TLPGreen.MarkingID()},
			Score: &score, Labels: []string{"x"}},
		standardID: stix.HostnameID("www.example.com"), internalID: internalIDFor(stix.HostnameID("www.example.com")),
		createdAt: t0, updatedAt: t0,
	}
	raw, _ := json.Marshal(e.toStix())
	want := `{"description":"","extensions":{"extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba":{"created_at":"2025-03-01T12:00:00.000Z","creator_ids":["88ec0c6a-13ce-5e39-b486-354fe4a7084f"],"extension_type":"property-extension","id":"` +
		e.internalID + `","is_inferred":false,"type":"Hostname","updated_at":"2025-03-01T12:00:00.000Z"},"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82":{"extension_type":"new-sco"}},"id":"` +
		e.standardID + `","labels":["x"],"object_marking_refs":["` + stix.TLPGreen.MarkingID() + `"],"score":42,"spec_version":"2.1","type":"hostname","value":"www.example.com"}`
	var gotMap, wantMap map[string]any
	_ = json.Unmarshal(raw, &gotMap)
	_ = json.Unmarshal([]byte(want), &wantMap)
	delete(wantMap, "description") // empty: omitted
	if diff := cmp.Diff(wantMap, gotMap); diff != "" {
		t.Errorf("hostname export (-want +got):\n%s", diff)
	}
}
