package opencti

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Playbook steps (§5.2c): the playbook engine's connector component sends
// a playbook-compatible connector internal.playbook and event.bundle, and
// waits for playbookStepExecution.

// automationUserID is the platform's automation manager user, the
// applicant of playbook steps.
const automationUserID = "c49fe040-2dad-412d-af07-ce639204ad55"

// ErrNotPlaybookCompatible: the connector did not register
// playbook_compatible=true, so the platform offers it to no playbook.
var ErrNotPlaybookCompatible = errors.New("the connector is not playbook compatible")

// PlaybookExecution is one playbookStepExecution the platform received.
type PlaybookExecution struct {
	ExecutionID, EventID, ExecutionStart, DataInstanceID, PlaybookID, PreviousStepID, StepID string
	PreviousBundle, Bundle                                                                   string
}

// RunPlaybookStep sends connectorID a playbook step on the entity
// entityID, its bundle made of the entity, its markings and extra objects
// (what earlier steps added), and returns the step's execution id.
func (p *Platform) RunPlaybookStep(ctx context.Context, connectorID, entityID string, extra ...map[string]any) (string, error) {
	p.mu.Lock()
	c := p.connectors[connectorID]
	if c == nil {
		p.mu.Unlock()
		return "", fmt.Errorf("fakeocti: playbook step with %s: %w", connectorID, ErrUnknownConnector)
	}
	if !c.playbookCompatible {
		p.mu.Unlock()
		return "", fmt.Errorf("fakeocti: playbook step with %s: %w", connectorID, ErrNotPlaybookCompatible)
	}
	e := p.entityLocked(entityID)
	if e == nil {
		p.mu.Unlock()
		return "", fmt.Errorf("fakeocti: playbook step on %s: %w", entityID, ErrUnknownEntity)
	}
	objects := e.stixObjects(p.markings)
	for _, o := range extra {
		objects = append(objects, o)
	}
	p.mu.Unlock()
	exec := "exec-" + rand.Text()
	msg := map[string]any{
		"internal": map[string]any{"work_id": nil, "applicant_id": automationUserID, "mode": "auto", "trigger": "create",
			"playbook": map[string]any{"event_id": "event-" + rand.Text(), "execution_id": exec, "playbook_id": "playbook-1",
				"data_instance_id": e.standardID, "step_id": "step-enrich", "previous_step_id": "step-trigger"}},
		"event": map[string]any{"entity_id": e.standardID,
			"bundle": map[string]any{"type": "bundle", "id": "bundle--" + uuidV5(oasisNamespace, exec), "spec_version": specVersion, "objects": objects}},
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("fakeocti: playbook step: %w", err)
	}
	if err := p.publish(ctx, p.connectorExchange(), p.listenRouting(connectorID), body); err != nil {
		return "", fmt.Errorf("fakeocti: playbook step: %w", err)
	}
	return exec, nil
}

// playbookStepExecution records a step's answer (the schema validated its
// arguments); both bundles must be STIX bundles.
func (x *execution) playbookStepExecution(args map[string]any) (any, error) {
	var ex PlaybookExecution
	for k, dst := range map[string]*string{"execution_id": &ex.ExecutionID, "event_id": &ex.EventID, "execution_start": &ex.ExecutionStart,
		"data_instance_id": &ex.DataInstanceID, "playbook_id": &ex.PlaybookID, "previous_step_id": &ex.PreviousStepID, "step_id": &ex.StepID,
		"previous_bundle": &ex.PreviousBundle, "bundle": &ex.Bundle} {
		v, ok := argString(args, k)
		if !ok || v == "" {
			return nil, unsupportedError("Missing argument "+k, nil)
		}
		*dst = v
	}
	for _, b := range []string{ex.PreviousBundle, ex.Bundle} {
		var bundle struct {
			Type    string            `json:"type"`
			Objects []json.RawMessage `json:"objects"`
		}
		if err := json.Unmarshal([]byte(b), &bundle); err != nil || bundle.Type != "bundle" {
			return nil, unsupportedError("Invalid bundle", nil)
		}
	}
	if _, err := time.Parse(time.RFC3339, ex.ExecutionStart); err != nil {
		return nil, unsupportedError("Invalid execution_start", nil)
	}
	x.p.mu.Lock()
	x.p.playbookRuns = append(x.p.playbookRuns, ex)
	x.p.notifyLocked()
	x.p.mu.Unlock()
	return true, nil
}

// PlaybookExecutions returns the steps executed so far, in order.
func (p *Platform) PlaybookExecutions() []PlaybookExecution {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]PlaybookExecution(nil), p.playbookRuns...)
}

// WaitPlaybookStep waits for the answer of the step of execution exec.
func (p *Platform) WaitPlaybookStep(ctx context.Context, exec string) (PlaybookExecution, error) {
	for {
		p.mu.Lock()
		changed, closed := p.changed, p.closed
		for _, r := range p.playbookRuns {
			if r.ExecutionID == exec {
				p.mu.Unlock()
				return r, nil
			}
		}
		p.mu.Unlock()
		if closed {
			return PlaybookExecution{}, fmt.Errorf("fakeocti: wait playbook step %s: %w", exec, ErrClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return PlaybookExecution{}, fmt.Errorf("fakeocti: wait playbook step %s: %w", exec, ctx.Err())
		}
	}
}
