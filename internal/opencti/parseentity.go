package opencti

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// maxEntitySize bounds event.stix_entity; real exports are a few KiB.
const maxEntitySize = 16 << 20

var stixIDPattern = regexp.MustCompile(`^[a-z][a-z0-9-]*--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ParseEntity checks and decodes the entity of an enrichment message. The
// input is untrusted: the type must be one the enrichment handles, the id a
// STIX id equal to the stix_entity's id, stix_entity a single JSON object
// of that type, and the fields the enrichment reads must have the right
// JSON types (hashes a dictionary of strings, object_marking_refs a list of
// ids, scores numbers from 0 to 100, …). Errors name the offending field.
func ParseEntity(entityID, entityType string, stixEntity []byte) (Entity, error) {
	stixType, ok := stixTypes[entityType]
	if !ok {
		return Entity{}, &UnsupportedTypeError{Type: entityType}
	}
	if entityID == "" {
		return Entity{}, errors.New("opencti: event.entity_id is empty")
	}
	if !stixIDPattern.MatchString(entityID) {
		return Entity{}, fmt.Errorf("opencti: event.entity_id %q is not a STIX id", entityID)
	}
	data := bytes.TrimSpace(stixEntity)
	if len(data) == 0 || string(data) == "null" {
		return Entity{}, errors.New("opencti: event.stix_entity is empty (the connector must register enrichment_resolution stix_bundle)")
	}
	if len(data) > maxEntitySize {
		return Entity{}, fmt.Errorf("opencti: event.stix_entity is %d bytes, more than the %d allowed", len(data), maxEntitySize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return Entity{}, fmt.Errorf("opencti: event.stix_entity: %w", err)
	}
	if _, err := dec.Token(); err == nil {
		return Entity{}, errors.New("opencti: event.stix_entity: data after the JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return Entity{}, errors.New("opencti: event.stix_entity is not a JSON object")
	}
	if err := checkEntity(obj, entityID, entityType, stixType); err != nil {
		return Entity{}, err
	}
	return Entity{ID: entityID, Type: entityType, STIX: obj}, nil
}

// checkEntity validates the fields of a decoded stix_entity.
func checkEntity(obj map[string]any, entityID, entityType, stixType string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("opencti: stix_entity.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	typeOf := func(v any) string {
		switch v.(type) {
		case nil:
			return "null"
		case string:
			return "a string"
		case json.Number:
			return "a number"
		case bool:
			return "a boolean"
		case []any:
			return "a list"
		case map[string]any:
			return "an object"
		}
		return fmt.Sprintf("%T", v)
	}
	str := func(field string, required bool) {
		v, present := obj[field]
		switch {
		case !present && required:
			bad(field, "missing")
		case present:
			if _, ok := v.(string); !ok {
				bad(field, "want a string, got %s", typeOf(v))
			} else if required && v == "" {
				bad(field, "empty")
			}
		}
	}
	strList := func(field string, list any, ids bool) {
		l, ok := list.([]any)
		if !ok {
			bad(field, "want a list of strings, got %s", typeOf(list))
			return
		}
		for i, e := range l {
			s, ok := e.(string)
			switch {
			case !ok:
				bad(fmt.Sprintf("%s[%d]", field, i), "want a string, got %s", typeOf(e))
			case ids && !stixIDPattern.MatchString(s):
				bad(fmt.Sprintf("%s[%d]", field, i), "%q is not a STIX id", s)
			}
		}
	}
	score := func(field string, v any) {
		if v == nil {
			return
		}
		n, ok := v.(json.Number)
		if !ok {
			bad(field, "want a number, got %s", typeOf(v))
			return
		}
		f, err := n.Float64()
		if err != nil || f < 0 || f > 100 {
			bad(field, "score %s is not a number from 0 to 100", n)
		}
	}
	refs := func(field string, v any) {
		l, ok := v.([]any)
		if !ok {
			bad(field, "want a list of external references, got %s", typeOf(v))
			return
		}
		for i, e := range l {
			if _, ok := e.(map[string]any); !ok {
				bad(fmt.Sprintf("%s[%d]", field, i), "want an object, got %s", typeOf(e))
			}
		}
	}

	// Older exports prefix OpenCTI's custom types with "x-opencti-" (pycti
	// accepts both spellings of the id too).
	if t, _ := obj["type"].(string); t != stixType && t != "x-opencti-"+stixType {
		bad("type", "%s, want %q for a %s", quoteOrType(obj["type"], typeOf), stixType, entityType)
	}
	if id, _ := obj["id"].(string); id != entityID && id != "x-opencti-"+entityID {
		bad("id", "%s does not match event.entity_id %q", quoteOrType(obj["id"], typeOf), entityID)
	}
	str("spec_version", false)
	if v, ok := obj["object_marking_refs"]; ok {
		strList("object_marking_refs", v, true)
	}
	if v, ok := obj["labels"]; ok {
		strList("labels", v, false)
	}
	if v, ok := obj["external_references"]; ok {
		refs("external_references", v)
	}
	if v, ok := obj["x_opencti_score"]; ok {
		score("x_opencti_score", v)
	}
	if v, ok := obj["extensions"]; ok {
		exts, isObj := v.(map[string]any)
		if !isObj {
			bad("extensions", "want an object, got %s", typeOf(v))
		}
		for name, ext := range exts {
			e, isObj := ext.(map[string]any)
			if !isObj {
				bad("extensions["+strconv.Quote(name)+"]", "want an object, got %s", typeOf(ext))
				continue
			}
			if name != stix.ExtensionOpenCTISCO && name != stix.ExtensionOpenCTISDO {
				continue
			}
			field := "extensions[" + strconv.Quote(name) + "]."
			if s, ok := e["score"]; ok {
				score(field+"score", s)
			}
			for _, list := range []string{"labels", "additional_names"} {
				if l, ok := e[list]; ok && l != nil {
					strList(field+list, l, false)
				}
			}
			if r, ok := e["external_references"]; ok && r != nil {
				refs(field+"external_references", r)
			}
		}
	}
	switch entityType {
	case TypeStixFile, TypeArtifact:
		if v, ok := obj["hashes"]; ok {
			h, isObj := v.(map[string]any)
			if !isObj {
				bad("hashes", "want an object, got %s", typeOf(v))
			}
			for algo, hv := range h {
				if _, ok := hv.(string); !ok {
					bad("hashes["+strconv.Quote(algo)+"]", "want a string, got %s", typeOf(hv))
				}
			}
		}
		str("name", false)
		if v, ok := obj["size"]; ok && v != nil {
			if _, isNum := v.(json.Number); !isNum {
				bad("size", "want a number, got %s", typeOf(v))
			}
		}
	case TypeIndicator:
		str("pattern", true)
		str("pattern_type", false)
		str("name", false)
	default:
		str("value", true)
	}
	return errors.Join(errs...)
}

func quoteOrType(v any, typeOf func(any) string) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return typeOf(v)
}
