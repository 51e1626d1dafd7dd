package opencti

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// pyctiObservableQuery reads an observable the way pycti's _data_handler
// does to build event.enrichment_entity (the fields the fixtures carry).
const pyctiObservableQuery = `
query StixCyberObservable($id: String!) {
    stixCyberObservable(id: $id) {
        id
        standard_id
        entity_type
        observable_value
        x_opencti_score
        objectMarking { id standard_id entity_type definition_type definition x_opencti_order x_opencti_color }
        objectLabel { id value color }
        ... on StixFile { hashes { algorithm hash } name }
        ... on Artifact { hashes { algorithm hash } }
        importFiles(first: 500) { edges { node { id name size metaData { mimetype version } } } }
    }
}`

// enrichmentEntity reads the entity of an event like pycti and flattens
// its connections (importFiles edges become a list of nodes).
func enrichmentEntity(t *testing.T, p *Platform, id string) map[string]any {
	t.Helper()
	var got struct {
		Obs map[string]any `json:"stixCyberObservable"`
	}
	mustGQL(t, p, pyctiObservableQuery, map[string]any{"id": id}, &got)
	if got.Obs == nil {
		t.Fatalf("stixCyberObservable(%s) is null", id)
	}
	if files, ok := got.Obs["importFiles"].(map[string]any); ok {
		var nodes []any
		for _, e := range files["edges"].([]any) {
			nodes = append(nodes, e.(map[string]any)["node"])
		}
		got.Obs["importFiles"] = nodes
	}
	return got.Obs
}

// missingKeys lists the keys of want absent from got.
func missingKeys(want, got map[string]any) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if _, ok := got[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func TestEnrichPublishesTheMessageOfTheRealFixture(t *testing.T) {
	var fixture map[string]any
	if err := json.Unmarshal(readShared(t, "testdata/opencti/enrichment_message_file_hybrid.json"), &fixture); err != nil {
		t.Fatal(err)
	}
	p := newPlatform(t, nil)
	cid := register(t, p, "StixFile", "Artifact")
	fileData := []byte("MZ\x90\x00 not really a PE\n")
	eid := p.AddEntity(Entity{Type: "StixFile", Name: "malware.exe", Markings: []string{"TLP:AMBER"},
		ImportFiles: []ImportFile{{Name: "malware.exe", Data: fileData}}})
	if want, _ := stix.FileID(nil, "malware.exe"); eid != want {
		t.Fatalf("AddEntity returned %s, want %s", eid, want)
	}
	wid, err := p.Enrich(t.Context(), cid, eid)
	if err != nil {
		t.Fatal(err)
	}

	ch := testConn(t, p)
	d := getMessage(t, ch, p.listenQueue(cid))
	if d.Exchange != p.connectorExchange() || d.RoutingKey != p.listenRouting(cid) || d.DeliveryMode != amqp.Persistent || d.ContentType != "" {
		t.Errorf("delivery exchange %q key %q mode %d content type %q", d.Exchange, d.RoutingKey, d.DeliveryMode, d.ContentType)
	}
	var msg struct {
		Internal map[string]any `json:"internal"`
		Event    map[string]any `json:"event"`
	}
	if err := json.Unmarshal(d.Body, &msg); err != nil {
		t.Fatalf("message %s: %v", d.Body, err)
	}
	wantInternal := map[string]any{"work_id": wid, "applicant_id": nil, "draft_id": nil, "mode": "manual", "trigger": "update"}
	if diff := cmp.Diff(wantInternal, msg.Internal); diff != "" {
		t.Errorf("internal (-want +got):\n%s", diff)
	}
	if got := slices.Sorted(maps.Keys(msg.Event)); !slices.Equal(got, []string{"entity_id", "entity_type", "event_type", "stix_entity", "stix_objects"}) {
		t.Errorf("event keys %v", got)
	}
	if msg.Event["event_type"] != "INTERNAL_ENRICHMENT" || msg.Event["entity_id"] != eid || msg.Event["entity_type"] != "StixFile" {
		t.Errorf("event %v", msg.Event)
	}

	// What pycti hands the connector: the two JSON strings parsed, and
	// enrichment_entity read over GraphQL. Its keys must cover the fixture's.
	event := map[string]any{}
	for _, k := range []string{"stix_entity", "stix_objects"} {
		s, ok := msg.Event[k].(string)
		if !ok {
			t.Fatalf("event.%s is %T, want a JSON string", k, msg.Event[k])
		}
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("event.%s: %v", k, err)
		}
		event[k] = v
	}
	event["enrichment_entity"] = enrichmentEntity(t, p, eid)
	if m := missingKeys(fixture, event); len(m) > 0 {
		t.Errorf("event lacks the fixture's keys %v", m)
	}
	entity := event["stix_entity"].(map[string]any)
	if m := missingKeys(fixture["stix_entity"].(map[string]any), entity); len(m) > 0 {
		t.Errorf("stix_entity lacks %v", m)
	}
	objects := event["stix_objects"].([]any)
	if m := missingKeys(fixture["stix_objects"].([]any)[0].(map[string]any), objects[0].(map[string]any)); len(m) > 0 {
		t.Errorf("stix_objects[0] lacks %v", m)
	}
	fe, ee := fixture["enrichment_entity"].(map[string]any), event["enrichment_entity"].(map[string]any)
	if m := missingKeys(fe, ee); len(m) > 0 {
		t.Errorf("enrichment_entity lacks %v", m)
	}
	for _, k := range []string{"importFiles", "objectMarking"} {
		if m := missingKeys(fe[k].([]any)[0].(map[string]any), ee[k].([]any)[0].(map[string]any)); len(m) > 0 {
			t.Errorf("enrichment_entity.%s[0] lacks %v", k, m)
		}
	}
	// And the values of the fixture's shape.
	if entity["id"] != eid || entity["type"] != "file" || entity["name"] != "malware.exe" ||
		!slices.Equal(anyStrings(entity["object_marking_refs"]), []string{stix.TLPAmber.MarkingID()}) {
		t.Errorf("stix_entity %v", entity)
	}
	if _, ok := entity["extensions"].(map[string]any)[stix.ExtensionOpenCTISCO]; !ok {
		t.Errorf("stix_entity has no OpenCTI SCO extension: %v", entity["extensions"])
	}
	if len(objects) != 2 || objects[1].(map[string]any)["id"] != stix.TLPAmber.MarkingID() {
		t.Errorf("stix_objects %v: want the entity and its TLP:AMBER definition", objects)
	}
	if ee["entity_type"] != "StixFile" || ee["observable_value"] != "malware.exe" || len(ee["hashes"].([]any)) != 0 {
		t.Errorf("enrichment_entity %v", ee)
	}
	if mk := ee["objectMarking"].([]any)[0].(map[string]any); mk["definition_type"] != "TLP" || mk["definition"] != "TLP:AMBER" {
		t.Errorf("objectMarking %v", mk)
	}

	// The uploaded file is served at /storage/get/<importFiles[0].id>.
	fileID := ee["importFiles"].([]any)[0].(map[string]any)["id"].(string)
	req := httptest.NewRequest(http.MethodGet, "/storage/get/"+fileID, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	if body, _ := io.ReadAll(rec.Body); rec.Code != http.StatusOK || string(body) != string(fileData) {
		t.Errorf("storage/get: %d %q", rec.Code, body)
	}

	st, ok := p.Work(wid)
	if !ok || st.Status != statusWait || st.Name != "Manual enrichment" || st.EventSourceID != eid ||
		st.ConnectorID != cid || !strings.HasPrefix(wid, "work_"+cid+"_") {
		t.Errorf("work %+v", st)
	}
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

func TestEnrichFollowsEnrichmentResolution(t *testing.T) {
	p := newPlatform(t, nil)
	ch := testConn(t, p)
	ip := p.AddEntity(Entity{Type: "IPv4-Addr", Value: "192.0.2.1", Markings: []string{"TLP:CLEAR"}})
	tests := []struct {
		resolution            any
		wantEntity, wantItems bool
	}{
		{"stix_bundle", true, true},
		{nil, true, true}, // not registered (platform < 6.8.9): the platform sends both
		{"none", true, false},
		{"deferred", false, false},
	}
	for _, tt := range tests {
		id := uuidV4()
		in := registerInput(id, "IPv4-Addr")
		if tt.resolution == nil {
			delete(in, "enrichment_resolution")
		} else {
			in["enrichment_resolution"] = tt.resolution
		}
		mustGQL(t, p, registerQuery, map[string]any{"input": in}, nil)
		if _, err := p.Enrich(t.Context(), id, ip); err != nil {
			t.Fatal(err)
		}
		var msg struct{ Event map[string]any }
		if err := json.Unmarshal(getMessage(t, ch, p.listenQueue(id)).Body, &msg); err != nil {
			t.Fatal(err)
		}
		_, gotEntity := msg.Event["stix_entity"].(string)
		_, gotItems := msg.Event["stix_objects"].(string)
		if gotEntity != tt.wantEntity || gotItems != tt.wantItems {
			t.Errorf("enrichment_resolution %v: stix_entity %v stix_objects %v", tt.resolution, msg.Event["stix_entity"] != nil, msg.Event["stix_objects"] != nil)
		}
	}

	if _, err := p.Enrich(t.Context(), "no-such-connector", ip); !errors.Is(err, ErrUnknownConnector) {
		t.Errorf("unknown connector: %v", err)
	}
	if _, err := p.Enrich(t.Context(), p.Connectors()[0].ID, "ipv4-addr--00000000-0000-4000-8000-000000000000"); !errors.Is(err, ErrUnknownEntity) {
		t.Errorf("unknown entity: %v", err)
	}
}

func TestAskEnrichmentThroughGraphQL(t *testing.T) {
	p := newPlatform(t, nil)
	cid := register(t, p, "Indicator")
	ind := p.AddEntity(Entity{Type: "Indicator", Pattern: stix.FileHashPattern(stix.HashSHA256, strings.Repeat("ab", 32)),
		MainObservableType: "StixFile", Markings: []string{"TLP:GREEN"}})
	var got struct {
		Edit struct {
			Ask struct {
				ID, Name, Status string
			} `json:"askEnrichment"`
		} `json:"stixCoreObjectEdit"`
	}
	mustGQL(t, p, `mutation($id: ID!, $c: ID!) { stixCoreObjectEdit(id: $id) { askEnrichment(connectorId: $c) { id name status } } }`,
		map[string]any{"id": ind, "c": cid}, &got)
	if got.Edit.Ask.Name != "Manual enrichment" || got.Edit.Ask.Status != statusWait {
		t.Errorf("askEnrichment %+v", got.Edit.Ask)
	}
	var msg struct{ Event map[string]any }
	if err := json.Unmarshal(getMessage(t, testConn(t, p), p.listenQueue(cid)).Body, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Event["entity_id"] != ind || msg.Event["entity_type"] != "Indicator" {
		t.Errorf("event %v", msg.Event)
	}
	// pycti reads x_opencti_observable_values of an indicator.
	var read struct {
		Indicator struct {
			Values []struct {
				Type, Value string
				Hashes      []struct{ Algorithm, Hash string }
			} `json:"x_opencti_observable_values"`
		} `json:"indicator"`
	}
	mustGQL(t, p, `query($id: String!) { indicator(id: $id) { x_opencti_observable_values { type value hashes { algorithm hash } } } }`,
		map[string]any{"id": ind}, &read)
	v := read.Indicator.Values
	if len(v) != 1 || v[0].Type != "StixFile" || len(v[0].Hashes) != 1 || v[0].Hashes[0].Algorithm != "SHA-256" {
		t.Errorf("x_opencti_observable_values %+v", v)
	}
}
