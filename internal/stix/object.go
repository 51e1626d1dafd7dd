package stix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// SpecVersion is the STIX version of every object this package builds.
const SpecVersion = "2.1"

// OpenCTI's extension definitions, under which the platform exports its own
// properties (score, labels, external references, …) of domain objects and
// of observables.
const (
	ExtensionOpenCTISDO = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"
	ExtensionOpenCTISCO = "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"
)

// Object is any STIX object a Bundle can carry.
type Object interface {
	// ObjectID returns the object's id ("indicator--…").
	ObjectID() string
	// ObjectType returns the object's type ("indicator").
	ObjectType() string
}

// Common holds the properties shared by STIX domain objects and
// relationships. Lists are omitted when empty, since STIX forbids empty
// lists.
type Common struct {
	Type               string              `json:"type"`
	SpecVersion        string              `json:"spec_version"`
	ID                 string              `json:"id"`
	Created            Timestamp           `json:"created"`
	Modified           Timestamp           `json:"modified"`
	CreatedByRef       string              `json:"created_by_ref,omitempty"`
	Labels             []string            `json:"labels,omitempty"`
	ExternalReferences []ExternalReference `json:"external_references,omitempty"`
	ObjectMarkingRefs  []string            `json:"object_marking_refs,omitempty"`
	// Extensions maps extension-definition ids (or "<name>-ext") to their
	// properties.
	Extensions map[string]map[string]any `json:"extensions,omitempty"`
}

func newCommon(stixType, id string, now time.Time) Common {
	ts := NewTimestamp(now)
	return Common{Type: stixType, SpecVersion: SpecVersion, ID: id, Created: ts, Modified: ts}
}

// ObjectID returns the object's id.
func (c Common) ObjectID() string { return c.ID }

// ObjectType returns the object's type.
func (c Common) ObjectType() string { return c.Type }

// ObservableCommon holds the properties shared by STIX cyber-observable
// objects, with the custom properties OpenCTI reads on observables in place
// of the domain-object ones STIX does not give them (x_opencti_created_by_ref
// for created_by_ref, x_opencti_labels for labels, …).
type ObservableCommon struct {
	Type              string                    `json:"type"`
	SpecVersion       string                    `json:"spec_version"`
	ID                string                    `json:"id"`
	ObjectMarkingRefs []string                  `json:"object_marking_refs,omitempty"`
	Extensions        map[string]map[string]any `json:"extensions,omitempty"`
	// Score is x_opencti_score, 0 to 100; nil leaves the platform's value.
	Score *int `json:"x_opencti_score,omitempty"`
	// Description is x_opencti_description.
	Description string `json:"x_opencti_description,omitempty"`
	// CreatedByRef is x_opencti_created_by_ref, the author identity's id.
	CreatedByRef string `json:"x_opencti_created_by_ref,omitempty"`
	// Labels is x_opencti_labels.
	Labels []string `json:"x_opencti_labels,omitempty"`
	// ExternalReferences is x_opencti_external_references.
	ExternalReferences []ExternalReference `json:"x_opencti_external_references,omitempty"`
}

func newObservableCommon(stixType, id string) ObservableCommon {
	return ObservableCommon{Type: stixType, SpecVersion: SpecVersion, ID: id}
}

// ObjectID returns the observable's id.
func (c ObservableCommon) ObjectID() string { return c.ID }

// ObjectType returns the observable's type.
func (c ObservableCommon) ObjectType() string { return c.Type }

// RawObject is a STIX object kept as the JSON it was read from, so that
// objects this package has no type for, or properties its types do not
// model (the platform's own x_opencti_* fields, extensions), travel through
// a Bundle unchanged.
type RawObject struct {
	data    json.RawMessage
	id, typ string
}

// ParseObject wraps the JSON of one STIX object, which must be a JSON object
// with a non-empty type and id.
func ParseObject(data []byte) (RawObject, error) {
	var head struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return RawObject{}, fmt.Errorf("stix: parse object: %w", err)
	}
	if head.Type == "" || head.ID == "" {
		return RawObject{}, errors.New("stix: parse object: missing type or id")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return RawObject{}, fmt.Errorf("stix: parse object: %w", err)
	}
	return RawObject{data: compact.Bytes(), id: head.ID, typ: head.Type}, nil
}

// ObjectID returns the object's id.
func (r RawObject) ObjectID() string { return r.id }

// ObjectType returns the object's type.
func (r RawObject) ObjectType() string { return r.typ }

// JSON returns the object's JSON (compacted). The caller must not modify it.
func (r RawObject) JSON() []byte { return r.data }

// Decode unmarshals the object into v, typically one of this package's
// types or a map[string]any.
func (r RawObject) Decode(v any) error {
	if err := json.Unmarshal(r.data, v); err != nil {
		return fmt.Errorf("stix: decode %s: %w", r.id, err)
	}
	return nil
}

// MarshalJSON returns the object's JSON unchanged.
func (r RawObject) MarshalJSON() ([]byte, error) {
	if r.data == nil {
		return nil, errors.New("stix: marshal empty RawObject")
	}
	return r.data, nil
}

// UnmarshalJSON is ParseObject.
func (r *RawObject) UnmarshalJSON(data []byte) error {
	v, err := ParseObject(data)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Bundle is a STIX bundle. Like pycti's bundles it also carries
// spec_version "2.1", which STIX 2.1 tolerates as a custom property.
type Bundle struct {
	Type        string   `json:"type"`
	ID          string   `json:"id"`
	SpecVersion string   `json:"spec_version,omitempty"`
	Objects     []Object `json:"objects,omitempty"`
}

// NewBundle returns a bundle of objects. Its id is derived from the ids of
// the objects, in order, so that the same content always gets the same id
// and golden files stay stable (OpenCTI gives bundle ids no meaning; pycti
// uses random ones).
func NewBundle(objects ...Object) Bundle {
	ids := make([]any, len(objects))
	for i, o := range objects {
		ids[i] = o.ObjectID()
	}
	return Bundle{
		Type:        "bundle",
		ID:          idOf("bundle", map[string]any{"objects": ids}),
		SpecVersion: SpecVersion,
		Objects:     slices.Clone(objects),
	}
}

// UnmarshalJSON reads a bundle, keeping every object as a RawObject.
func (b *Bundle) UnmarshalJSON(data []byte) error {
	var wire struct {
		Type        string      `json:"type"`
		ID          string      `json:"id"`
		SpecVersion string      `json:"spec_version"`
		Objects     []RawObject `json:"objects"`
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return fmt.Errorf("stix: bundle: %w", err)
	}
	if wire.Type != "bundle" {
		return fmt.Errorf("stix: bundle: type is %q, want \"bundle\"", wire.Type)
	}
	*b = Bundle{Type: wire.Type, ID: wire.ID, SpecVersion: wire.SpecVersion}
	if wire.Objects != nil {
		b.Objects = make([]Object, len(wire.Objects))
		for i, o := range wire.Objects {
			b.Objects[i] = o
		}
	}
	return nil
}
