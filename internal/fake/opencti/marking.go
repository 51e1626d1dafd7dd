package opencti

import (
	"encoding/json"
	"strings"
)

// Marking is a marking definition created on the platform (beside the
// fixed TLP ones): an organisation's own "TLP:RED" has a random id that
// no connector can know without asking.
type Marking struct {
	DefinitionType string // "TLP", "PAP", "statement", …
	Definition     string // "TLP:RED"
	Order          int
}

// AddMarking creates a marking definition and returns its standard id,
// to be put in an Entity's Markings. The id is derived from the
// definition, as the platform does (upper-cased type and definition).
func (p *Platform) AddMarking(m Marking) string {
	id := "marking-definition--" + uuidV5(oasisNamespace, `{"definition":"`+strings.ToUpper(m.Definition)+`","definition_type":"`+strings.ToUpper(m.DefinitionType)+`"}`)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.markings[id] = m
	return id
}

// markingDefinition resolves Query.markingDefinition(id): a fixed TLP
// marking or one created with AddMarking, null otherwise.
func (x *execution) markingDefinition(args map[string]any) (any, error) {
	id, _ := argString(args, "id")
	x.p.mu.Lock()
	defer x.p.mu.Unlock()
	if _, ok := tlpByMarkingID[id]; !ok {
		if _, ok := x.p.markings[id]; !ok {
			return nil, nil
		}
	}
	return x.p.markingObjectLocked(id), nil
}

// stixObject is the STIX export of a platform-created marking.
func (m Marking) stixObject(id string) map[string]any {
	return map[string]any{
		"type": "marking-definition", "spec_version": specVersion, "id": id,
		"created": tlpCreated, "name": m.Definition, "definition_type": m.DefinitionType, "definition": m.Definition,
		"extensions": map[string]any{extensionSDO: map[string]any{
			"extension_type": "property-extension", "id": internalIDFor(id), "type": "Marking-Definition", "order": m.Order,
		}},
	}
}

// AddOrganization adds an organisation to the platform's knowledge, as if
// imported, and returns its id: entities can then be shared with it
// (Entity.GrantedRefs) and objects granted to it resolve.
func (p *Platform) AddOrganization(name string) string {
	id := deterministicID("identity", map[string]any{"name": normalizeName(name), "identity_class": "organization"})
	raw, _ := json.Marshal(map[string]any{"type": "identity", "spec_version": specVersion, "id": id, "name": name,
		"identity_class": "organization", "created": tlpCreated, "modified": tlpCreated})
	p.mu.Lock()
	defer p.mu.Unlock()
	p.objects[id] = raw
	p.notifyLocked()
	return id
}
