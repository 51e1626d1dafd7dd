package opencti

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"
)

// GraphQL reads of the knowledge: entities, markings, labels.

func (x *execution) stixCoreObject(args map[string]any) (any, error) {
	return x.entity(args, func(*entity) bool { return true })
}

func (x *execution) stixCyberObservable(args map[string]any) (any, error) {
	return x.entity(args, func(e *entity) bool { return e.Type != "Indicator" })
}

func (x *execution) indicator(args map[string]any) (any, error) {
	return x.entity(args, func(e *entity) bool { return e.Type == "Indicator" })
}

func (x *execution) entity(args map[string]any, ok func(*entity) bool) (any, error) {
	id, _ := argString(args, "id")
	x.p.mu.Lock()
	defer x.p.mu.Unlock()
	e := x.p.entityLocked(id)
	if e == nil || !ok(e) {
		return nil, nil
	}
	return x.p.entityObjectLocked(e), nil
}

func (x *execution) stixCoreObjectEdit(args map[string]any) (any, error) {
	p := x.p
	id, _ := argString(args, "id")
	ask := func(connectorIDs []string) ([]any, error) {
		var out []any
		for _, cid := range connectorIDs {
			wid, err := p.enrich(x.ctx, cid, id, x.userID)
			if err != nil {
				return nil, functionalError("Cannot enrich the object: "+err.Error(), map[string]any{"enrichedId": id})
			}
			p.mu.Lock()
			if w := p.works[wid]; w != nil {
				out = append(out, p.workObjectLocked(w))
			}
			p.mu.Unlock()
		}
		return out, nil
	}
	return gqlObject{typename: "StixCoreObjectEditMutations", fields: map[string]any{
		"askEnrichment": fieldFunc(func(args map[string]any) (any, error) {
			cid, _ := argString(args, "connectorId")
			works, err := ask([]string{cid})
			if err != nil || len(works) == 0 {
				return nil, err
			}
			return works[0], nil
		}),
		"askEnrichments": fieldFunc(func(args map[string]any) (any, error) {
			ids, _ := argStrings(args, "connectorIds")
			return ask(ids)
		}),
	}}, nil
}

// entityObjectLocked is the GraphQL object of an entity. p.mu must be held.
func (p *Platform) entityObjectLocked(e *entity) gqlObject {
	sid := e.standardID
	markings := []any{}
	for _, m := range e.Markings {
		markings = append(markings, p.markingObjectLocked(m))
	}
	labels := []any{}
	for _, l := range e.Labels {
		labels = append(labels, labelObject(l, e.createdAt))
	}
	edges := []any{}
	for _, f := range e.files {
		edges = append(edges, gqlObject{typename: "FileEdge", fields: map[string]any{
			"cursor": f.id,
			"node": gqlObject{typename: "File", fields: map[string]any{
				"id": f.id, "entity_type": "InternalFile", "name": f.name, "size": len(f.data),
				"lastModified": dateTime(f.modified), "lastModifiedSinceMin": 0, "uploadStatus": statusComplete,
				"objectMarking": []any{},
				"metaData": gqlObject{typename: "FileMetadata", fields: map[string]any{
					"mimetype": f.mimeType, "version": dateTime(f.modified), "entity_id": e.internalID,
				}},
			}},
		}})
	}
	var score any
	if e.Score != nil {
		score = *e.Score
	}
	parents := []any{"Stix-Cyber-Observable", "Stix-Core-Object", "Stix-Object", "Basic-Object"}
	if e.Type == "Indicator" {
		parents = []any{"Stix-Domain-Object", "Stix-Core-Object", "Stix-Object", "Basic-Object"}
	}
	stixJSON, _ := json.Marshal(e.toStix())
	f := map[string]any{
		"id":                       e.internalID,
		"standard_id":              sid,
		"entity_type":              e.Type,
		"parent_types":             parents,
		"representative":           gqlObject{typename: "Representative", fields: map[string]any{"main": e.observableValue()}},
		"x_opencti_stix_ids":       []any{},
		"is_inferred":              false,
		"spec_version":             specVersion,
		"created_at":               dateTime(e.createdAt),
		"updated_at":               dateTime(e.updatedAt),
		"numberOfConnectedElement": 0,
		"creators": []any{gqlObject{typename: "Creator", fields: map[string]any{
			"id": adminUserID, "name": "admin", "entity_type": "User",
			"representative": gqlObject{typename: "Representative", fields: map[string]any{"main": "admin"}},
		}}},
		"createdBy":          nil,
		"objectMarking":      markings,
		"objectLabel":        labels,
		"objectOrganization": []any{},
		"externalReferences": connection("ExternalReferenceConnection", nil),
		"importFiles":        connection("FileConnection", edges),
		"pendingFiles":       connection("FileConnection", nil),
		"exportFiles":        connection("FileConnection", nil),
		"x_opencti_score":    score,
		"toStix":             fieldFunc(func(map[string]any) (any, error) { return string(stixJSON), nil }),
		"jobs":               p.jobsField(sid),
		"connectors":         p.entityConnectorsField(e.Type),
	}
	if e.Type == "Indicator" {
		values := []any{}
		for _, o := range patternObservables(e.Pattern) {
			hashes := []any{}
			for _, h := range o.hashes {
				hashes = append(hashes, gqlObject{typename: "Hash", fields: map[string]any{"algorithm": h[0], "hash": h[1]}})
			}
			values = append(values, gqlObject{typename: "ObservablesValues", fields: map[string]any{
				"type": o.typ, "value": o.value, "hashes": hashes,
			}})
		}
		for k, v := range map[string]any{
			"name": e.Name, "description": e.Description, "pattern": e.Pattern, "pattern_type": e.PatternType,
			"pattern_version": nil, "valid_from": dateTime(e.createdAt), "valid_until": nil,
			"revoked": false, "confidence": 100, "created": dateTime(e.createdAt), "modified": dateTime(e.updatedAt),
			"indicator_types": []any{}, "killChainPhases": []any{}, "x_opencti_detection": false,
			"x_opencti_main_observable_type": e.MainObservableType, "x_opencti_observable_values": values,
		} {
			f[k] = v
		}
		return gqlObject{typename: e.gqlType(), fields: f}
	}
	f["observable_value"] = e.observableValue()
	f["x_opencti_description"] = e.Description
	switch e.Type {
	case "StixFile", "Artifact":
		hashes := []any{}
		for _, a := range slices.Sorted(maps.Keys(e.Hashes)) {
			hashes = append(hashes, gqlObject{typename: "Hash", fields: map[string]any{"algorithm": a, "hash": e.Hashes[a]}})
		}
		f["hashes"] = hashes
		f["mime_type"] = e.MimeType
		f["x_opencti_additional_names"] = []any{}
		if e.Type == "StixFile" {
			f["name"] = e.Name
		} else {
			f["url"] = e.URL
		}
	default:
		f["value"] = e.Value
	}
	return gqlObject{typename: e.gqlType(), fields: f}
}

func connection(typename string, edges []any) gqlObject {
	if edges == nil {
		edges = []any{}
	}
	return gqlObject{typename: typename, fields: map[string]any{
		"edges": edges,
		"pageInfo": gqlObject{typename: "PageInfo", fields: map[string]any{
			"startCursor": "", "endCursor": "", "hasNextPage": false, "hasPreviousPage": false, "globalCount": len(edges),
		}},
	}}
}

// markingObject is the GraphQL MarkingDefinition of a marking id.
func (p *Platform) markingObjectLocked(id string) gqlObject {
	created := tlpCreated
	f := map[string]any{
		"id": uuidV5(openctiNamespace, id), "standard_id": id, "entity_type": "Marking-Definition",
		"parent_types": []any{"Stix-Meta-Object", "Stix-Object", "Basic-Object"},
		"spec_version": specVersion, "is_inferred": false, "x_opencti_order": 0, "x_opencti_stix_ids": []any{},
		"created": created, "modified": created, "created_at": created, "updated_at": created,
		"representative": gqlObject{typename: "Representative", fields: map[string]any{"main": id}},
	}
	if t, ok := tlpByMarkingID[id]; ok {
		f["definition_type"] = "TLP"
		f["definition"] = t.name
		f["x_opencti_order"] = t.order
		f["x_opencti_color"] = t.color
		f["representative"] = gqlObject{typename: "Representative", fields: map[string]any{"main": t.name}}
	}
	if m, ok := p.markings[id]; ok {
		f["definition_type"] = m.DefinitionType
		f["definition"] = m.Definition
		f["x_opencti_order"] = m.Order
		f["representative"] = gqlObject{typename: "Representative", fields: map[string]any{"main": m.Definition}}
	}
	return gqlObject{typename: "MarkingDefinition", fields: f}
}

// labelObject is the GraphQL Label of a label value.
func labelObject(value string, at time.Time) gqlObject {
	return gqlObject{typename: "Label", fields: map[string]any{
		"id": uuidV5(openctiNamespace, "label:"+value), "standard_id": labelID(value),
		"entity_type": "Label", "parent_types": []any{"Stix-Meta-Object", "Stix-Object", "Basic-Object"},
		"spec_version": specVersion, "is_inferred": false, "x_opencti_stix_ids": []any{},
		"created_at": dateTime(at), "updated_at": dateTime(at), "created": dateTime(at), "modified": dateTime(at),
		"representative": gqlObject{typename: "Representative", fields: map[string]any{"main": value}},
		"value":          value, "color": "#000000",
	}}
}

func (p *Platform) jobsField(sourceID string) fieldFunc {
	return func(map[string]any) (any, error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		out := []any{}
		for _, wid := range slices.Backward(p.workOrder) {
			if w := p.works[wid]; w != nil && w.EventSourceID == sourceID {
				out = append(out, p.workObjectLocked(w))
			}
		}
		return out, nil
	}
}

// entityConnectorsField lists the enrichment connectors whose scope covers
// an entity type (StixCoreObject.connectors).
func (p *Platform) entityConnectorsField(entityType string) fieldFunc {
	return func(args map[string]any) (any, error) {
		onlyAlive, _ := argBool(args, "onlyAlive")
		p.mu.Lock()
		defer p.mu.Unlock()
		now := p.now()
		out := []any{}
		for _, id := range p.connOrder {
			c := p.connectors[id]
			if c.typ != "INTERNAL_ENRICHMENT" || !inScope(c.scope, entityType) || (onlyAlive && !c.active(now)) {
				continue
			}
			out = append(out, p.connectorObjectLocked(c))
		}
		return out, nil
	}
}

// inScope matches an entity type against a connector scope, case
// insensitively, as the platform does.
func inScope(scope []string, entityType string) bool {
	for _, s := range scope {
		if strings.EqualFold(strings.TrimSpace(s), entityType) {
			return true
		}
	}
	return false
}
