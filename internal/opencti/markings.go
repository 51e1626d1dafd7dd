package opencti

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// objects returns the STIX objects the message carries: a playbook
// step's bundle, else stix_objects (a JSON text, or a list).
func (m *message) objects() []json.RawMessage {
	if len(m.Event.Bundle) > 0 {
		var b struct {
			Objects []json.RawMessage `json:"objects"`
		}
		if json.Unmarshal(m.Event.Bundle, &b) == nil {
			return b.Objects
		}
		return nil
	}
	raw := m.Event.StixObjects
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = []byte(s)
	}
	var out []json.RawMessage
	if json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return out
}

// resolveMarkings turns the entity's marking ids into definitions: the
// fixed TLP ids as they are, others from the marking-definition objects
// of the message, else from the platform. A marking found nowhere stays a
// bare id, which stix.CheckTLP refuses (fail closed); a platform that
// cannot be asked is an error (the request is retried).
func (c *Connector) resolveMarkings(ctx context.Context, ids []string, objects []json.RawMessage) ([]stix.Marking, error) {
	known := map[string]stix.Marking{}
	for _, raw := range objects {
		if mk, ok := stixMarking(raw); ok {
			known[mk.StandardID] = mk
		}
	}
	out := make([]stix.Marking, 0, len(ids))
	for _, id := range ids {
		if _, ok := stix.TLPFromMarkingID(id); ok {
			out = append(out, stix.Marking{StandardID: id})
			continue
		}
		if mk, ok := known[id]; ok {
			out = append(out, mk)
			continue
		}
		mk, err := c.d.Platform.MarkingDefinition(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("resolve the marking %s: %w", id, err)
		}
		if mk == nil {
			c.log.Warn("marking unknown to the platform (or hidden from the connector's user); the entity is not sent", "marking", id)
			mk = &stix.Marking{}
		}
		mk.StandardID = id
		out = append(out, *mk)
	}
	return out, nil
}

// stixMarking reads a STIX marking-definition object: the STIX form
// (definition_type "tlp", definition {"tlp": "red"}) or OpenCTI's
// (definition_type "TLP", definition "TLP:RED").
func stixMarking(raw json.RawMessage) (stix.Marking, bool) {
	var o struct {
		Type           string          `json:"type"`
		ID             string          `json:"id"`
		DefinitionType string          `json:"definition_type"`
		Definition     json.RawMessage `json:"definition"`
		Name           string          `json:"name"`
	}
	if json.Unmarshal(raw, &o) != nil || o.Type != "marking-definition" || o.ID == "" {
		return stix.Marking{}, false
	}
	mk := stix.Marking{StandardID: o.ID, DefinitionType: o.DefinitionType}
	var def string
	var tlp struct {
		TLP string `json:"tlp"`
	}
	switch {
	case json.Unmarshal(o.Definition, &def) == nil && def != "":
		mk.Definition = def
	case strings.EqualFold(o.DefinitionType, "tlp") && json.Unmarshal(o.Definition, &tlp) == nil && tlp.TLP != "":
		mk.DefinitionType, mk.Definition = "TLP", "TLP:"+strings.ToUpper(tlp.TLP)
	case o.Name != "":
		mk.Definition = o.Name
	default:
		return stix.Marking{}, false
	}
	return mk, true
}
