package opencti

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestTLPGateResolvesEveryMarkingAndFailsClosed(t *testing.T) {
	const custom = "marking-definition--0d7a1b2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
	tests := []struct {
		name     string
		platform map[string]stix.Marking // what markingDefinition answers
		objects  []any                   // stix_objects of the message
		blocked  string                  // "" = enriched
	}{
		{"a platform-created TLP:RED read from the platform", map[string]stix.Marking{custom: {DefinitionType: "TLP", Definition: "TLP:RED"}}, nil, "TLP:RED"},
		{"a platform-created TLP:RED in the message's objects", nil,
			[]any{map[string]any{"type": "marking-definition", "id": custom, "definition_type": "TLP", "definition": "TLP:RED"}}, "TLP:RED"},
		{"a marking nobody knows", nil, nil, "could not be resolved"},
		{"a platform-created TLP:GREEN passes", map[string]stix.Marking{custom: {DefinitionType: "TLP", Definition: "TLP:GREEN"}}, nil, ""},
		{"a statement passes", map[string]stix.Marking{custom: {DefinitionType: "statement", Definition: "Internal"}}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newOctiWorld(t, nil)
			w.p.markings = tt.platform
			w.eng.lookup = func(r engine.Request) (engine.Result, error) {
				return engine.Result{Kind: vt.KindIP, ID: r.ID, Found: true, Object: ipReport()}, nil
			}
			ip := testIP()
			ip["object_marking_refs"] = []string{custom}
			body := enrichMessage(t, "work-m", ip, "IPv4-Addr")
			if tt.objects != nil {
				var m map[string]any
				_ = json.Unmarshal(body, &m)
				objs, _ := json.Marshal(append([]any{ip}, tt.objects...))
				m["event"].(map[string]any)["stix_objects"] = string(objs)
				body, _ = json.Marshal(m)
			}
			w.handle(t.Context(), body)
			ends := w.p.ended()
			if len(ends) != 1 {
				t.Fatalf("work ends %+v", ends)
			}
			if tt.blocked == "" {
				if ends[0].inError || len(w.eng.calls) != 1 {
					t.Errorf("work end %+v, calls %v: want it enriched", ends[0], w.eng.calls)
				}
				return
			}
			if !ends[0].inError || !strings.Contains(ends[0].msg, tt.blocked) || !strings.Contains(ends[0].msg, "MAX TLP") {
				t.Errorf("work end %+v: want an error naming %q", ends[0], tt.blocked)
			}
			if len(w.eng.calls) != 0 {
				t.Errorf("VirusTotal was asked %v", w.eng.calls)
			}
		})
	}
}
