package opencti

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// playbookMessage is a playbook step as the platform's playbook engine
// sends it: no work, the bundle as an object.
func playbookMessage(t *testing.T, entity map[string]any, extra ...any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"internal": map[string]any{"work_id": nil, "applicant_id": "automation", "playbook": map[string]any{
			"event_id": "ev-1", "execution_id": "exec-1", "playbook_id": "pb-1", "data_instance_id": entity["id"],
			"step_id": "step-2", "previous_step_id": "step-1"}},
		"event": map[string]any{"entity_id": entity["id"], "bundle": map[string]any{"type": "bundle", "id": "bundle--1", "spec_version": "2.1",
			"objects": append([]any{entity}, extra...)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPlaybookStepIsAnsweredWithTheWholeBundle(t *testing.T) {
	other := map[string]any{"type": "domain-name", "spec_version": "2.1", "id": "domain-name--bedb4899-d24b-5401-bc86-8f6b4cc18ec7", "value": "example.com"}
	tests := []struct {
		name     string
		env      map[string]string
		found    bool
		enriched bool
	}{
		{"enriched", nil, true, true},
		{"unknown to VirusTotal goes on unchanged", nil, false, false},
		{"out of scope goes on unchanged", map[string]string{"CONNECTOR_SCOPE": "StixFile"}, true, false},
		{"blocked by TLP goes on unchanged", map[string]string{"VIRUSTOTAL_MAX_TLP": "TLP:CLEAR"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newOctiWorld(t, tt.env)
			w.eng.lookup = func(r engine.Request) (engine.Result, error) {
				return engine.Result{Kind: vt.KindIP, ID: r.ID, Found: tt.found, Object: ipReport()}, nil
			}
			ip := testIP()
			if tt.name == "blocked by TLP goes on unchanged" {
				ip["object_marking_refs"] = []string{"marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"}
			}
			body := playbookMessage(t, ip, other)
			if !w.handle(t.Context(), body) {
				t.Fatal("not acknowledged")
			}
			if len(w.p.steps) != 1 || len(w.p.pushed) != 0 || len(w.p.processed) != 0 {
				t.Fatalf("%d steps, %d pushes, %d work ends: a playbook step is answered through playbookStepExecution only", len(w.p.steps), len(w.p.pushed), len(w.p.processed))
			}
			s := w.p.steps[0]
			if s.ExecutionID != "exec-1" || s.EventID != "ev-1" || s.PlaybookID != "pb-1" || s.StepID != "step-2" || s.PreviousStepID != "step-1" ||
				s.DataInstanceID != ip["id"] || s.ExecutionStart.IsZero() {
				t.Errorf("step ids %+v", s)
			}
			var prev, next struct {
				Objects []map[string]any `json:"objects"`
			}
			var in map[string]any
			_ = json.Unmarshal(body, &in)
			wantPrev, _ := json.Marshal(in["event"].(map[string]any)["bundle"])
			if err := json.Unmarshal([]byte(s.PreviousBundle), &prev); err != nil || len(prev.Objects) != 2 {
				t.Errorf("previous bundle %s, want the incoming one %s", s.PreviousBundle, wantPrev)
			}
			if err := json.Unmarshal([]byte(s.Bundle), &next); err != nil {
				t.Fatal(err)
			}
			ids := map[string]bool{}
			notes := 0
			for _, o := range next.Objects {
				ids[o["id"].(string)] = true
				if o["type"] == "note" {
					notes++
				}
			}
			if !ids[ip["id"].(string)] || !ids[other["id"].(string)] {
				t.Errorf("the new bundle lost incoming objects: %v", ids)
			}
			if tt.enriched != (notes > 0) {
				t.Errorf("%d notes in the new bundle (enriched %v)", notes, tt.enriched)
			}
			if !tt.enriched && len(next.Objects) != 2 {
				t.Errorf("an unenriched step changed the bundle: %s", s.Bundle)
			}
			if tt.enriched && !strings.Contains(s.Bundle, `"score":`) {
				t.Log(s.Bundle)
				t.Errorf("the entity in the new bundle is not the enriched version")
			}
		})
	}
}
