package stix

import (
	"slices"
	"strings"
	"time"
)

// ExternalReference points to non-STIX information, such as the
// VirusTotal report page of an object.
type ExternalReference struct {
	SourceName  string `json:"source_name"`
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
	Hashes      Hashes `json:"hashes,omitempty"`
	ExternalID  string `json:"external_id,omitempty"`
}

// KillChainPhase is a phase of a kill chain.
type KillChainPhase struct {
	KillChainName string `json:"kill_chain_name"`
	PhaseName     string `json:"phase_name"`
}

// Pattern types of indicators.
const (
	PatternTypeSTIX = "stix"
	PatternTypeYARA = "yara"
)

// Indicator is a STIX indicator with OpenCTI's custom properties.
type Indicator struct {
	Common
	Name            string           `json:"name,omitempty"`
	Description     string           `json:"description,omitempty"`
	IndicatorTypes  []string         `json:"indicator_types,omitempty"`
	Pattern         string           `json:"pattern"`
	PatternType     string           `json:"pattern_type"`
	PatternVersion  string           `json:"pattern_version,omitempty"`
	ValidFrom       Timestamp        `json:"valid_from"`
	ValidUntil      Timestamp        `json:"valid_until,omitzero"`
	KillChainPhases []KillChainPhase `json:"kill_chain_phases,omitempty"`
	// Score is x_opencti_score, 0 to 100.
	Score *int `json:"x_opencti_score,omitempty"`
	// Detection is x_opencti_detection; nil omits it.
	Detection *bool `json:"x_opencti_detection,omitempty"`
	// MainObservableType is x_opencti_main_observable_type, OpenCTI's entity
	// type of the observable the pattern is about ("StixFile", "IPv4-Addr",
	// "Domain-Name", "Hostname", "Url", "Artifact", …).
	MainObservableType string `json:"x_opencti_main_observable_type,omitempty"`
}

// NewIndicator returns an indicator with the deterministic id of pattern,
// created, modified and valid_from set to now. A "stix" pattern also gets
// pattern_version "2.1", as the stix2 library writes it.
func NewIndicator(pattern, patternType string, now time.Time) Indicator {
	in := Indicator{
		Common:      newCommon("indicator", IndicatorID(pattern), now),
		Pattern:     pattern,
		PatternType: patternType,
		ValidFrom:   NewTimestamp(now),
	}
	if patternType == PatternTypeSTIX {
		in.PatternVersion = "2.1"
	}
	return in
}

// Note is a STIX note.
type Note struct {
	Common
	Abstract   string   `json:"abstract,omitempty"`
	Content    string   `json:"content"`
	Authors    []string `json:"authors,omitempty"`
	ObjectRefs []string `json:"object_refs"`
	// NoteTypes is OpenCTI's note_types open vocabulary.
	NoteTypes []string `json:"note_types,omitempty"`
}

// NewNote returns a note about the objects objectRefs, created and modified
// now, with the id NoteID(content, now). See NoteID for how created makes
// the id change at every call with a new time.
func NewNote(content string, objectRefs []string, now time.Time) Note {
	return Note{
		Common:     newCommon("note", NoteID(content, now), now),
		Content:    content,
		ObjectRefs: slices.Clone(objectRefs),
	}
}

// Relationship types the enrichment creates.
const (
	RelBasedOn    = "based-on"
	RelBelongsTo  = "belongs-to"
	RelLocatedAt  = "located-at"
	RelResolvesTo = "resolves-to"
	RelRelatedTo  = "related-to"
	RelIndicates  = "indicates"
)

// Relationship is a STIX core relationship.
type Relationship struct {
	Common
	RelationshipType string    `json:"relationship_type"`
	Description      string    `json:"description,omitempty"`
	SourceRef        string    `json:"source_ref"`
	TargetRef        string    `json:"target_ref"`
	StartTime        Timestamp `json:"start_time,omitzero"`
	StopTime         Timestamp `json:"stop_time,omitzero"`
}

// NewRelationship returns a relationship without start or stop time,
// created and modified now, with its deterministic id. sourceRef and
// targetRef must be the standard ids of the two ends. A caller that sets
// StartTime or StopTime must recompute the id with RelationshipID.
func NewRelationship(relationshipType, sourceRef, targetRef string, now time.Time) Relationship {
	return Relationship{
		Common:           newCommon("relationship", RelationshipID(relationshipType, sourceRef, targetRef, time.Time{}, time.Time{}), now),
		RelationshipType: relationshipType,
		SourceRef:        sourceRef,
		TargetRef:        targetRef,
	}
}

// Location is a STIX location with OpenCTI's location type.
type Location struct {
	Common
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Region      string `json:"region,omitempty"`
	Country     string `json:"country,omitempty"`
	City        string `json:"city,omitempty"`
	// LocationType is x_opencti_location_type: "Country", "City", "Region".
	LocationType string `json:"x_opencti_location_type,omitempty"`
}

// NewCountry returns a country location, created and modified now, with
// country set to the ISO 3166-1 alpha-2 code and the id
// LocationID(name, "Country"). An empty name falls back to the code, which is
// what the original connector hashes (it names no country).
func NewCountry(name, countryCode string, now time.Time) Location {
	if name == "" {
		name = countryCode
	}
	return Location{
		Common:       newCommon("location", LocationID(name, LocationTypeCountry), now),
		Name:         name,
		Country:      countryCode,
		LocationType: LocationTypeCountry,
	}
}

// Identity classes.
const (
	IdentityClassOrganization = "organization"
	IdentityClassIndividual   = "individual"
	IdentityClassSystem       = "system"
)

// Identity is a STIX identity, such as the connector's author organization.
type Identity struct {
	Common
	Name               string `json:"name"`
	Description        string `json:"description,omitempty"`
	IdentityClass      string `json:"identity_class,omitempty"`
	ContactInformation string `json:"contact_information,omitempty"`
}

// NewIdentity returns an identity, created and modified now, with the id
// IdentityID(name, identityClass).
func NewIdentity(name, identityClass string, now time.Time) Identity {
	return Identity{
		Common:        newCommon("identity", IdentityID(name, identityClass), now),
		Name:          name,
		IdentityClass: identityClass,
	}
}

// MarkingDefinition is a STIX marking definition (it has no modified
// property). OpenCTI writes its own definition types ("TLP" with
// {"TLP": "TLP:TEST"}, "PAP", …) in the same shape.
type MarkingDefinition struct {
	Type               string              `json:"type"`
	SpecVersion        string              `json:"spec_version"`
	ID                 string              `json:"id"`
	Created            Timestamp           `json:"created"`
	CreatedByRef       string              `json:"created_by_ref,omitempty"`
	Name               string              `json:"name,omitempty"`
	DefinitionType     string              `json:"definition_type"`
	Definition         map[string]string   `json:"definition"`
	ExternalReferences []ExternalReference `json:"external_references,omitempty"`
	ObjectMarkingRefs  []string            `json:"object_marking_refs,omitempty"`
}

// ObjectID returns the marking definition's id.
func (m MarkingDefinition) ObjectID() string { return m.ID }

// ObjectType returns "marking-definition".
func (m MarkingDefinition) ObjectType() string { return m.Type }

// tlpEpoch is the created time of the STIX TLP marking definitions.
var tlpEpoch = time.Date(2017, time.January, 20, 0, 0, 0, 0, time.UTC)

// TLPMarkingDefinition returns the marking definition of level t as OpenCTI
// exports it: fixed id, created 2017-01-20T00:00:00.000Z, definition_type
// "tlp", name "TLP:AMBER+STRICT" and definition {"tlp": "amber+strict"}.
// Objects only need the id in object_marking_refs (the platform knows the
// TLP definitions), so a bundle need not carry these. The official STIX
// schema only knows the TLP 1.0 names, so the TLP:CLEAR and
// TLP:AMBER+STRICT definitions do not validate against it.
func TLPMarkingDefinition(t TLP) MarkingDefinition {
	return MarkingDefinition{
		Type:           "marking-definition",
		SpecVersion:    SpecVersion,
		ID:             t.MarkingID(),
		Created:        NewTimestamp(tlpEpoch),
		Name:           t.String(),
		DefinitionType: "tlp",
		Definition:     map[string]string{"tlp": strings.ToLower(strings.TrimPrefix(t.String(), "TLP:"))},
	}
}

// TLP returns the TLP level of the marking definition, recognising the
// fixed TLP ids, STIX's {"tlp": "amber"} definitions and OpenCTI's
// {"TLP": "TLP:AMBER"} ones. ok is false for other markings.
func (m MarkingDefinition) TLP() (TLP, bool) {
	if t, ok := TLPFromMarkingID(m.ID); ok {
		return t, true
	}
	if !strings.EqualFold(m.DefinitionType, "tlp") {
		return 0, false
	}
	for k, v := range m.Definition {
		if !strings.EqualFold(k, "tlp") {
			continue
		}
		if !strings.HasPrefix(strings.ToUpper(v), "TLP:") {
			v = "TLP:" + v
		}
		if t, ok := tlpByName[strings.ToUpper(v)]; ok {
			return t, true
		}
	}
	return 0, false
}
