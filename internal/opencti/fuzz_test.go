package opencti

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vtconnector/vtconnector/internal/engine"
)

// FuzzParseEntity: any STIX entity of any type is read or refused
// without a panic; a read entity has a lookup or a clear refusal.
func FuzzParseEntity(f *testing.F) {
	for _, s := range []struct{ typ, entity string }{
		{"IPv4-Addr", `{"type":"ipv4-addr","id":"ipv4-addr--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a","value":"198.51.100.7"}`},
		{"StixFile", `{"type":"file","id":"file--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a","hashes":{"SHA-256":"../../etc/passwd"}}`},
		{"Indicator", `{"type":"indicator","id":"indicator--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a","pattern":"[url:value = 'x']","pattern_type":"stix"}`},
		{"Url", `{"type":"url","value":123}`},
		{"Domain-Name", `"double encoded"`},
	} {
		f.Add(s.typ, s.entity)
	}
	f.Fuzz(func(t *testing.T, typ, entity string) {
		ent, err := ParseEntity("x--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a", typ, []byte(entity))
		if err != nil {
			return
		}
		if ent.Type == TypeIndicator {
			_, _ = IndicatorObservables(ent)
			return
		}
		if lk, err := LookupFor(ent); err == nil && (!lk.Kind.Valid() || lk.ID == "") {
			t.Fatalf("entity %s %q gives lookup %+v", typ, entity, lk)
		}
	})
}

// FuzzExtractYARARule: the extracted rule is the named rule's text (plus
// the imports it needs) taken from the ruleset, never something else.
func FuzzExtractYARARule(f *testing.F) {
	f.Add("import \"pe\"\nrule a { condition: pe.is_dll() }\nrule b { strings: $s = \"}\" condition: $s }", "b")
	f.Add("rule x { condition: true } // rule y { }", "y")
	f.Add("private rule r : tag { meta: a = \"{\" condition: true }", "r")
	f.Fuzz(func(t *testing.T, rules, name string) {
		text, ok := extractYARARule(rules, name)
		if !ok {
			return
		}
		body := text
		for strings.HasPrefix(body, "import ") {
			_, body, _ = strings.Cut(body, "\n")
		}
		body = strings.TrimPrefix(body, "\n")
		if !strings.Contains(rules, body) || !strings.Contains(body, name) {
			t.Fatalf("extractYARARule(%q, %q) = %q: not the rule's own text", rules, name, text)
		}
	})
}

// FuzzHandleMessage: whatever arrives on the queue, the connector neither
// panics nor asks VirusTotal about an entity it could not read; each
// message ends acknowledged or left for redelivery.
func FuzzHandleMessage(f *testing.F) {
	ip, _ := json.Marshal(map[string]any{"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a", "value": "198.51.100.7"})
	msg, _ := json.Marshal(map[string]any{"internal": map[string]any{"work_id": "w"},
		"event": map[string]any{"entity_id": "ipv4-addr--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a", "entity_type": "IPv4-Addr", "stix_entity": string(ip)}})
	f.Add(msg)
	f.Add([]byte(`{"internal":{"work_id":null},"event":{"entity_id":"x","entity_type":"Artifact","stix_entity":"{}"}}`))
	f.Add([]byte(`{"event":{"entity_id":"indicator--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a","entity_type":"Indicator","stix_entity":"{\"type\":\"indicator\",\"pattern\":\"[file:hashes.MD5 = '44d88612fea8a8f36de82e1278abb02f']\"}"}}`))
	w := newOctiWorld(f, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		w.eng.calls = nil
		w.eng.lookup = func(r engine.Request) (engine.Result, error) {
			return engine.Result{Kind: r.Kind, ID: r.ID}, nil
		}
		_ = w.handle(t.Context(), body)
		for _, c := range w.eng.calls {
			if strings.HasPrefix(c, "lookup ") && strings.TrimPrefix(c, "lookup ") == "" {
				t.Fatalf("an empty lookup was asked for %q", body)
			}
		}
	})
}
