package opencti

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// maxSourceLen is the size from which the worker reports "Bundle too large"
// instead of the object as the source of an import error.
const maxSourceLen = 50000

// observableTypes are the observable STIX types of pycti's
// STIX_CYBER_OBSERVABLE_MAPPING.
var observableTypes = setOf(`autonomous-system directory domain-name email-addr email-message
	email-mime-part-type artifact file x509-certificate ipv4-addr ipv6-addr mac-addr mutex
	network-traffic process software url user-account windows-registry-key
	windows-registry-value-type hostname cryptographic-key cryptocurrency-wallet text user-agent
	bank-account phone-number credential tracking-number payment-card media-content
	simple-observable persona`)

// supportedTypes are the STIX types pycti's splitter and worker import:
// SUPPORTED_STIX_ENTITY_OBJECTS, the observables, relationship and
// sighting. The splitter drops objects of other types.
var supportedTypes = func() map[string]bool {
	m := setOf(`label vocabulary kill-chain-phase
		attack-pattern campaign case-incident x-opencti-case-incident case-rfi x-opencti-case-rfi
		case-rft x-opencti-case-rft channel course-of-action data-component x-mitre-data-component
		data-source x-mitre-data-source event external-reference feedback x-opencti-feedback grouping
		identity incident indicator infrastructure intrusion-set language location malware
		malware-analysis marking-definition narrative note observed-data opinion report task
		x-opencti-task threat-actor tool vulnerability security-coverage relationship sighting`)
	for t := range observableTypes {
		m[t] = true
	}
	return m
}()

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// isIDSupported is pycti's is_id_supported: a STIX id of a supported type,
// or anything that is not a STIX id.
func isIDSupported(id string) bool {
	typ, _, ok := strings.Cut(id, "--")
	return !ok || supportedTypes[typ]
}

// handlePush is the worker's handling of one push-queue message (§7.4,
// WPH handle_message).
func (p *Platform) handlePush(connectorID string, d amqp.Delivery) {
	rec := PushedBundle{
		Received: p.now(), Envelope: slices.Clone(d.Body),
		DeliveryMode: d.DeliveryMode, ContentEncoding: d.ContentEncoding,
	}
	var env map[string]any
	if err := json.Unmarshal(d.Body, &env); err != nil {
		p.rejectPush(d, "", rec, "message is not JSON: "+err.Error())
		return
	}
	workID, _ := env["work_id"].(string)
	if workID != "" {
		p.mu.Lock()
		alive := p.works[workID] != nil
		p.mu.Unlock()
		if !alive {
			// isWorkAlive false: acked and dropped.
			p.log.Warn("worker: message of a deleted or unknown work dropped", "work_id", workID, "connector_id", connectorID)
			_ = d.Ack(false)
			return
		}
	}
	content, _ := env["content"].(string)
	raw, err := base64.StdEncoding.DecodeString(content)
	if err != nil {
		p.rejectPush(d, workID, rec, "content is not standard base64: "+err.Error())
		return
	}
	rec.Bundle = raw
	if typ, ok := env["type"].(string); ok && typ != "bundle" {
		p.rejectPush(d, workID, rec, fmt.Sprintf("unsupported event type %q", typ))
		return
	}
	var bundle map[string]any
	if err := json.Unmarshal(raw, &bundle); err != nil {
		p.rejectPush(d, workID, rec, "content is not a JSON object: "+err.Error())
		return
	}
	objects, _ := bundle["objects"].([]any)
	if len(objects) == 0 {
		p.rejectPush(d, workID, rec, "JSON data type is not a STIX2 bundle")
		return
	}
	rec.Objects = len(objects)
	for i, o := range objects {
		if m, ok := o.(map[string]any); !ok || m["id"] == nil {
			p.rejectPush(d, workID, rec, fmt.Sprintf("object %d has no id", i))
			return
		}
	}
	noSplit, _ := env["no_split"].(bool)
	if len(objects) > 1 && !noSplit {
		// Received whole: split, add the expectations, republish one
		// object per message with the same envelope.
		pieces := splitBundle(bundle)
		rec.Split = true
		p.recordPush(workID, rec)
		if workID != "" {
			p.mu.Lock()
			if w := p.works[workID]; w != nil {
				p.workAddExpectationsLocked(w, len(pieces))
			}
			p.mu.Unlock()
		}
		for _, piece := range pieces {
			raw, _ := json.Marshal(piece)
			env["content"] = base64.StdEncoding.EncodeToString(raw)
			body, _ := json.Marshal(env)
			if err := p.publish(context.Background(), p.workerExchange(), p.pushRouting(connectorID), body); err != nil {
				p.log.Error("worker: republish a split bundle", "connector_id", connectorID, "error", err)
			}
		}
		_ = d.Ack(false)
		return
	}
	p.recordPush(workID, rec)
	types, _ := env["entities_types"].([]any)
	pieces := splitBundle(bundle)
	if len(pieces) < len(objects) {
		// pycti's import_bundle splits too: what the splitter drops is
		// neither imported nor reported, so the work keeps waiting for it.
		p.log.Warn("worker: objects of unsupported types or incomplete relationships dropped unreported",
			"work_id", workID, "objects", len(objects), "kept", len(pieces))
	}
	for _, piece := range pieces {
		for _, o := range piece["objects"].([]any) {
			p.importObject(workID, o.(map[string]any), types)
		}
	}
	_ = d.Ack(false)
}

func (p *Platform) rejectPush(d amqp.Delivery, workID string, rec PushedBundle, reason string) {
	rec.Error = reason
	p.recordPush(workID, rec)
	p.log.Error("worker: message rejected", "work_id", workID, "reason", reason)
	_ = d.Nack(false, false)
}

func (p *Platform) recordPush(workID string, rec PushedBundle) {
	if workID == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.works[workID]; w != nil {
		w.Bundles = append(w.Bundles, rec)
		p.notifyLocked()
	}
}

// importObject imports one object and reports its expectation (pycti
// import_item): it checks the object, upserts it and reports success or
// its error on the work.
func (p *Platform) importObject(workID string, obj map[string]any, types []any) {
	delete(obj, "nb_deps") // the splitter's bookkeeping
	typ, _ := obj["type"].(string)
	id, _ := obj["id"].(string)
	raw, _ := json.Marshal(obj)
	source := string(raw)
	if len(source) >= maxSourceLen {
		source = "Bundle too large"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	report := func(code, msg string) {
		var e *WorkMessage
		if code != "" {
			e = &WorkMessage{Message: code + ": " + msg, Source: source, Code: code, ObjectID: id}
			p.log.Warn("worker: import error", "work_id", workID, "object_id", id, "code", code, "error", msg)
		}
		if w := p.works[workID]; w != nil {
			p.workReportExpectationLocked(w, e)
		} else {
			p.notifyLocked()
		}
	}
	if typ == "" {
		report(CodeInvalidObject, "object without type")
		return
	}
	if err := checkIDSyntax(typ, id); err != nil {
		report(CodeInvalidObject, err.Error())
		return
	}
	if !typeSelected(typ, types) {
		// pycti skips what the entities_types scope excludes and still
		// reports success.
		p.log.Info("worker: object outside the message's entities_types not imported", "object_id", id)
		report("", "")
		return
	}
	if missing := p.unresolvedRefsLocked(obj); len(missing) > 0 {
		report(CodeMissingReference, "Element(s) not found, unresolved references: "+strings.Join(missing, ", "))
		return
	}
	want, err := standardID(obj)
	switch {
	case errors.Is(err, errNoIDProperties):
		report(CodeInvalidObject, fmt.Sprintf("%s has none of the properties its id is derived from (Missing required elements)", id))
		return
	case err == nil && want != id:
		// The platform upserts an existing element found by the id it
		// was given (an enriched entity whose hashes changed), and keeps
		// a trusted (non-v1) id that differs from the computed standard
		// id in x_opencti_stix_ids, finding the element by it next time
		// (data-builder.js buildEntityData, middleware.ts
		// internalCreateEntityRaw). Only untrusted ids are a mismatch.
		_, known := p.entities[id]
		_, seen := p.objects[id]
		if known || seen || trustedID(id) {
			p.aliases[id] = want
			p.storeLocked(id, raw, obj)
			report("", "")
			return
		}
		p.storeLocked(id, raw, obj)
		report(CodeIDMismatch, fmt.Sprintf("%s is not the standard id of its properties, %s", id, want))
		return
	}
	p.storeLocked(id, raw, obj)
	report("", "")
}

func (p *Platform) storeLocked(id string, raw []byte, obj map[string]any) {
	p.objects[id] = raw
	p.writes[id]++
	p.updateFromImportLocked(obj)
}

// typeSelected applies a message's entities_types scope (pycti
// import_item): everything when empty; marking definitions always;
// observables also under "observable".
func typeSelected(typ string, types []any) bool {
	if len(types) == 0 || typ == "marking-definition" {
		return true
	}
	for _, t := range types {
		s, _ := t.(string)
		if s == typ || (s == "observable" && observableTypes[typ]) {
			return true
		}
	}
	return false
}

// unresolvedRefsLocked lists the references of obj the platform cannot
// resolve: every *_ref / *_refs value at the top level, and the STIX ids in
// *_ref / *_refs of its extensions (which also hold internal ids). An id
// resolves to the object itself, an imported object, an entity (standard or
// internal id) or a TLP marking. p.mu must be held.
func (p *Platform) unresolvedRefsLocked(obj map[string]any) []string {
	self, _ := obj["id"].(string)
	var missing []string
	check := func(v any, onlyStixIDs bool) {
		s, ok := v.(string)
		if !ok || s == "" || s == self || slices.Contains(missing, s) {
			return
		}
		if onlyStixIDs && !isStixID(s) {
			return
		}
		if _, ok := p.objects[s]; ok {
			return
		}
		if p.entityLocked(s) != nil {
			return
		}
		if _, ok := tlpByMarkingID[s]; ok {
			return
		}
		missing = append(missing, s)
	}
	walk := func(m map[string]any, onlyStixIDs bool) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			switch {
			case strings.HasSuffix(k, "_refs"):
				list, _ := m[k].([]any)
				for _, v := range list {
					check(v, onlyStixIDs)
				}
			case strings.HasSuffix(k, "_ref"):
				check(m[k], onlyStixIDs)
			}
		}
	}
	walk(obj, false)
	if exts, ok := obj["extensions"].(map[string]any); ok {
		for _, k := range slices.Sorted(maps.Keys(exts)) {
			if ext, ok := exts[k].(map[string]any); ok {
				walk(ext, true)
			}
		}
	}
	return missing
}

// splitBundle is pycti's OpenCTIStix2Splitter.split_bundle_with_expectations
// (§7.2): each object gets nb_deps = 1 + the nb_deps of the objects of the
// bundle it references (self references and cycles cut, references outside
// the bundle kept), unsupported types and incomplete relationships are
// dropped, and the objects, sorted by nb_deps (stable), come out as one
// bundle each.
func splitBundle(bundle map[string]any) []map[string]any {
	bundleID, _ := bundle["id"].(string)
	if bundleID == "" {
		bundleID = "bundle--" + uuidV4()
	}
	objects, _ := bundle["objects"].([]any)
	s := &splitter{raw: map[string]map[string]any{}, index: map[string]map[string]any{}, refs: map[string][]string{}}
	for _, o := range objects {
		m, ok := o.(map[string]any)
		if !ok {
			continue
		}
		id, _ := m["id"].(string)
		s.raw[id] = m
		for _, iid := range internalIDsIn(m) {
			s.raw[iid] = m
		}
	}
	for _, o := range objects {
		if m, ok := o.(map[string]any); ok {
			id, _ := m["id"].(string)
			s.enlist(id, nil)
		}
	}
	slices.SortStableFunc(s.elements, func(a, b map[string]any) int {
		return a["nb_deps"].(int) - b["nb_deps"].(int)
	})
	out := make([]map[string]any, 0, len(s.elements))
	for _, e := range s.elements {
		piece := map[string]any{
			"type": "bundle", "id": bundleID, "spec_version": "2.1",
			"x_opencti_seq": e["nb_deps"], "objects": []any{e},
		}
		if v, ok := bundle["x_opencti_event_version"]; ok {
			piece["x_opencti_event_version"] = v
		}
		out = append(out, piece)
	}
	return out
}

type splitter struct {
	raw      map[string]map[string]any
	index    map[string]map[string]any
	refs     map[string][]string
	elements []map[string]any
}

func internalIDsIn(m map[string]any) []string {
	var ids []string
	if s, ok := m["x_opencti_id"].(string); ok && s != "" {
		ids = append(ids, s)
	}
	if s := extensionString(m, extensionSDO, "id"); s != "" {
		ids = append(ids, s)
	}
	return ids
}

func (s *splitter) enlist(id string, parents []string) int {
	item, ok := s.raw[id]
	if !ok {
		return 0
	}
	if existing, ok := s.index[id]; ok {
		n, _ := existing["nb_deps"].(int)
		return n
	}
	deps := 1
	follow := func(ref string) bool {
		notDependency := !slices.Contains(s.refs[ref], id)
		return isIDSupported(ref) && !slices.Contains(parents, ref) && ref != id && notDependency
	}
	// pycti walks the keys in the object's order; the double sorts them
	// (Go maps have no order), which only changes the order of equal-nb_deps
	// objects in unusual bundles.
	for _, k := range slices.Sorted(maps.Keys(item)) {
		switch {
		case strings.HasSuffix(k, "_refs"):
			list, ok := item[k].([]any)
			if !ok {
				continue
			}
			var keep []any
			for _, r := range list {
				ref, _ := r.(string)
				if !follow(ref) {
					continue
				}
				s.refs[id] = append(s.refs[id], ref)
				deps += s.enlist(ref, append(slices.Clone(parents), ref))
				if !slices.Contains(keep, any(ref)) {
					keep = append(keep, ref)
				}
			}
			if len(list) > 0 {
				if keep == nil {
					keep = []any{}
				}
				item[k] = keep
			}
		case strings.HasSuffix(k, "_ref"):
			ref, _ := item[k].(string)
			if item[k] != nil && follow(ref) {
				s.refs[id] = append(s.refs[id], ref)
				deps += s.enlist(ref, append(slices.Clone(parents), ref))
			} else {
				item[k] = nil
			}
		}
	}
	item["nb_deps"] = deps
	if _, ok := s.index[id]; !ok {
		typ, _ := item["type"].(string)
		compatible := isIDSupported(id)
		switch typ {
		case "relationship":
			compatible = item["source_ref"] != nil && item["target_ref"] != nil
		case "sighting":
			where, _ := item["where_sighted_refs"].([]any)
			compatible = item["sighting_of_ref"] != nil && len(where) > 0
		}
		if compatible {
			s.elements = append(s.elements, item)
		}
		s.index[id] = item
		for _, iid := range internalIDsIn(item) {
			s.index[iid] = item
		}
	}
	return deps
}

// trustedID reports whether the platform would keep id as an alias: its
// UUID is a name-based (v5) one, as deterministic ids are.
func trustedID(id string) bool {
	i := strings.Index(id, "--")
	if i < 0 || len(id) < i+2+15 {
		return false
	}
	return id[i+2+14] == '5'
}

// Aliases returns the ids the worker accepted as aliases of another
// standard id (id → the standard id its properties give).
func (p *Platform) Aliases() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.aliases)
}
