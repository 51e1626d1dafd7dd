package opencti

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// The enrichment trigger (§5.2) and the bundle push through the API (§7.5).

// Enrich asks connectorID to enrich the entity entityID (standard or
// internal id), as the platform's manual enrichment does
// (askElementEnrichmentForConnectors): it creates a "Manual enrichment"
// work for the admin user and publishes the enrichment message on the
// connector exchange with the connector's listen routing key. stix_objects
// follows the connector's enrichment_resolution: the entity and its
// markings when "stix_bundle" or unset, null when "none"; "deferred" sends
// neither stix_entity nor stix_objects. Liveness and scope are not checked.
func (p *Platform) Enrich(ctx context.Context, connectorID, entityID string) (string, error) {
	return p.enrich(ctx, connectorID, entityID, adminUserID)
}

type enrichmentMessage struct {
	Internal enrichmentInternal `json:"internal"`
	Event    enrichmentEvent    `json:"event"`
}

type enrichmentInternal struct {
	WorkID      string  `json:"work_id"`
	ApplicantID *string `json:"applicant_id"`
	DraftID     *string `json:"draft_id"`
	Mode        string  `json:"mode"`
	Trigger     string  `json:"trigger"`
}

type enrichmentEvent struct {
	EventType   string  `json:"event_type"`
	EntityID    string  `json:"entity_id"`
	EntityType  string  `json:"entity_type"`
	StixEntity  *string `json:"stix_entity"`
	StixObjects *string `json:"stix_objects"`
}

func (p *Platform) enrich(ctx context.Context, connectorID, entityID, userID string) (string, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return "", fmt.Errorf("fakeocti: enrich: %w", ErrClosed)
	}
	c := p.connectors[connectorID]
	if c == nil {
		p.mu.Unlock()
		return "", fmt.Errorf("fakeocti: enrich with %s: %w", connectorID, ErrUnknownConnector)
	}
	e := p.entityLocked(entityID)
	if e == nil {
		p.mu.Unlock()
		return "", fmt.Errorf("fakeocti: enrich %s: %w", entityID, ErrUnknownEntity)
	}
	resolution := "stix_bundle"
	if c.enrichmentResolution != nil {
		resolution = *c.enrichmentResolution
	}
	msg := enrichmentMessage{
		Internal: enrichmentInternal{Mode: "manual", Trigger: "update"},
		Event:    enrichmentEvent{EventType: "INTERNAL_ENRICHMENT", EntityID: e.standardID, EntityType: e.Type},
	}
	if resolution != "deferred" {
		raw, _ := json.Marshal(e.toStix())
		s := string(raw)
		msg.Event.StixEntity = &s
	}
	if resolution == "stix_bundle" {
		raw, _ := json.Marshal(e.stixObjects(p.markings))
		s := string(raw)
		msg.Event.StixObjects = &s
	}
	w := p.newWorkLocked(c.id, "Manual enrichment", userID, e.standardID, false)
	msg.Internal.WorkID = w.ID
	p.mu.Unlock()

	body, err := json.Marshal(msg)
	if err != nil {
		return w.ID, fmt.Errorf("fakeocti: enrich: encode message: %w", err)
	}
	if err := p.publish(ctx, p.connectorExchange(), p.listenRouting(connectorID), body); err != nil {
		return w.ID, fmt.Errorf("fakeocti: enrich %s with %s: %w", e.standardID, connectorID, err)
	}
	p.log.Info("enrichment asked", "connector_id", connectorID, "entity_id", e.standardID,
		"entity_type", e.Type, "work_id", w.ID, "enrichment_resolution", resolution)
	return w.ID, nil
}

func (x *execution) stixBundlePush(args map[string]any) (any, error) {
	p := x.p
	cid, _ := argString(args, "connectorId")
	bundle, _ := argString(args, "bundle")
	workID, _ := argString(args, "work_id")
	invalid := func(cause string) error {
		return unsupportedError("Invalid bundle", map[string]any{"cause": cause})
	}
	var b struct {
		Type    string            `json:"type"`
		Objects []json.RawMessage `json:"objects"`
	}
	if err := json.Unmarshal([]byte(bundle), &b); err != nil {
		return nil, invalid(err.Error())
	}
	if b.Type != "bundle" || len(b.Objects) == 0 {
		return nil, invalid("Invalid stix bundle")
	}
	p.mu.Lock()
	c := p.connectors[cid]
	if c == nil {
		p.mu.Unlock()
		return nil, invalid("Invalid connector")
	}
	if workID == "" {
		name := c.name + " run @ " + formatTimestamp(p.now())
		w := p.newWorkLocked(cid, name, x.userID, cid, true)
		w.selfCompleting = true
		workID = w.ID
		if len(b.Objects) == 1 {
			// Only when the worker will not split anything.
			p.workAddExpectationsLocked(w, 1)
		}
	}
	p.mu.Unlock()
	msg := struct {
		Type        string `json:"type"`
		ApplicantID string `json:"applicant_id"`
		Content     string `json:"content"`
		WorkID      string `json:"work_id"`
		Update      bool   `json:"update"`
	}{"bundle", x.userID, base64.StdEncoding.EncodeToString([]byte(bundle)), workID, true}
	body, _ := json.Marshal(msg)
	if err := p.publish(x.ctx, p.workerExchange(), p.pushRouting(cid), body); err != nil {
		return nil, invalid(err.Error())
	}
	return true, nil
}

// PublishRaw publishes body as is on connectorID's listen routing key: a
// malformed or hostile message, as tests need them.
func (p *Platform) PublishRaw(ctx context.Context, connectorID string, body []byte) error {
	if err := p.publish(ctx, p.connectorExchange(), p.listenRouting(connectorID), body); err != nil {
		return fmt.Errorf("fakeocti: publish to %s: %w", connectorID, err)
	}
	return nil
}

// AddWork creates a "Manual enrichment" work of connectorID for entityID
// without sending any message (tests then publish their own with
// PublishRaw).
func (p *Platform) AddWork(connectorID, entityID string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.connectors[connectorID] == nil {
		return "", fmt.Errorf("fakeocti: add work for %s: %w", connectorID, ErrUnknownConnector)
	}
	return p.newWorkLocked(connectorID, "Manual enrichment", adminUserID, entityID, false).ID, nil
}
