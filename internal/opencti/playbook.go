package opencti

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Playbook steps, as pycti runs them: the platform's playbook engine sends
// internal.playbook and event.bundle (no work); the connector enriches the
// bundle's entity and answers with playbookStepExecution, carrying the
// bundle it received and the whole new bundle, so that the playbook goes
// on. An entity the connector leaves alone (out of scope, blocked by TLP,
// unknown to VirusTotal) goes on unchanged.

// playbookEntity finds the step's entity in its bundle: its STIX object
// and OpenCTI type.
func (m *message) playbookEntity() (raw json.RawMessage, entityType string, err error) {
	for _, o := range m.objects() {
		var head struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		if json.Unmarshal(o, &head) != nil || head.ID != m.Event.EntityID {
			continue
		}
		if t, ok := observableTypes[head.Type]; ok {
			return o, t, nil
		}
		if head.Type == "indicator" {
			return o, TypeIndicator, nil
		}
		return o, head.Type, nil
	}
	return nil, "", fmt.Errorf("the playbook's bundle has no object %s", m.Event.EntityID)
}

// answerPlaybook executes the step with the incoming objects updated by
// objects (new versions replace the old ones, new objects are added);
// objects nil sends the bundle back unchanged.
func (c *Connector) answerPlaybook(ctx context.Context, m *message, objects []json.RawMessage) (string, error) {
	pb := m.Internal.Playbook
	merged := m.objects()
	at := map[string]int{}
	for i, o := range merged {
		at[objectID(o)] = i
	}
	for _, o := range objects {
		if i, ok := at[objectID(o)]; ok {
			merged[i] = o
			continue
		}
		at[objectID(o)] = len(merged)
		merged = append(merged, o)
	}
	var head struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(m.Event.Bundle, &head)
	if head.ID == "" {
		head.ID = "bundle--" + uuid4()
	}
	bundle, err := json.Marshal(map[string]any{"type": "bundle", "id": head.ID, "spec_version": "2.1", "objects": merged})
	if err != nil {
		return "", err
	}
	start := m.received
	if start.IsZero() {
		start = time.Now()
	}
	step := PlaybookStep{ExecutionID: pb.ExecutionID, EventID: pb.EventID, ExecutionStart: start.UTC(), DataInstanceID: pb.DataInstanceID,
		PlaybookID: pb.PlaybookID, PreviousStepID: pb.PreviousStepID, StepID: pb.StepID, PreviousBundle: string(m.Event.Bundle), Bundle: string(bundle)}
	if err := c.retry(ctx, "executing the playbook step", func() error { return c.d.Platform.PlaybookStepExecution(ctx, step) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("Playbook step %s executed with %d object(s)", pb.StepID, len(merged)), nil
}

func objectID(raw json.RawMessage) string {
	var head struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &head)
	return head.ID
}
