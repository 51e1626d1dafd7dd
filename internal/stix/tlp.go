package stix

import (
	"errors"
	"fmt"
	"strings"
)

// TLP is a Traffic Light Protocol level, ordered from the least to the most
// restrictive, so that a < b means a is shareable more widely than b. The
// zero value is not a level.
type TLP int

// The TLP levels OpenCTI knows. TLP:WHITE (TLP 1.0) is the same level as
// TLP:CLEAR and shares its marking definition.
const (
	TLPClear TLP = iota + 1
	TLPGreen
	TLPAmber
	TLPAmberStrict
	TLPRed
)

// ErrUnknownTLP is returned by ParseTLP for a string that is not one of
// OpenCTI's TLP levels.
var ErrUnknownTLP = errors.New("unknown TLP level")

// tlpByName maps upper-case OpenCTI TLP definitions to levels.
var tlpByName = map[string]TLP{
	"TLP:CLEAR":        TLPClear,
	"TLP:WHITE":        TLPClear,
	"TLP:GREEN":        TLPGreen,
	"TLP:AMBER":        TLPAmber,
	"TLP:AMBER+STRICT": TLPAmberStrict,
	"TLP:RED":          TLPRed,
}

// tlpInfo holds each level's OpenCTI definition and fixed marking id
// (identifier.js STATIC_STANDARD_IDS, pycti MarkingDefinition).
var tlpInfo = [...]struct{ name, markingID string }{
	TLPClear:       {"TLP:CLEAR", "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"},
	TLPGreen:       {"TLP:GREEN", "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"},
	TLPAmber:       {"TLP:AMBER", "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"},
	TLPAmberStrict: {"TLP:AMBER+STRICT", "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"},
	TLPRed:         {"TLP:RED", "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"},
}

// ParseTLP parses "TLP:CLEAR", "TLP:WHITE", "TLP:GREEN", "TLP:AMBER",
// "TLP:AMBER+STRICT" or "TLP:RED", case-insensitively and ignoring
// surrounding white space. "TLP:WHITE" parses as TLPClear.
func ParseTLP(s string) (TLP, error) {
	if t, ok := tlpByName[strings.ToUpper(strings.TrimSpace(s))]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("stix: parse TLP %q: %w (want TLP:CLEAR, TLP:WHITE, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT or TLP:RED)", s, ErrUnknownTLP)
}

// Valid reports whether t is one of the five levels.
func (t TLP) Valid() bool {
	return t >= TLPClear && t <= TLPRed
}

// String returns OpenCTI's definition of the level ("TLP:AMBER+STRICT"), or
// "TLP(n)" for an invalid value.
func (t TLP) String() string {
	if !t.Valid() {
		return fmt.Sprintf("TLP(%d)", int(t))
	}
	return tlpInfo[t].name
}

// MarkingID returns the fixed id of the level's marking definition, or ""
// for an invalid value.
func (t TLP) MarkingID() string {
	if !t.Valid() {
		return ""
	}
	return tlpInfo[t].markingID
}

// MarshalText writes the level as String does; it fails for an invalid value.
func (t TLP) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("stix: marshal TLP: %w: %d", ErrUnknownTLP, int(t))
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses the level with ParseTLP.
func (t *TLP) UnmarshalText(text []byte) error {
	v, err := ParseTLP(string(text))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// TLPFromMarkingID returns the level whose fixed marking definition id is
// id.
func TLPFromMarkingID(id string) (TLP, bool) {
	for t := TLPClear; t <= TLPRed; t++ {
		if tlpInfo[t].markingID == id {
			return t, true
		}
	}
	return 0, false
}

// Marking is a marking definition as found on an entity: one element of the
// objectMarking list of the entity OpenCTI hands an enrichment connector
// (its JSON decodes straight into it), or just an id from a STIX
// object_marking_refs list.
type Marking struct {
	// StandardID is the marking definition's STIX id.
	StandardID string `json:"standard_id,omitempty"`
	// DefinitionType is "TLP", "PAP", "statement", …
	DefinitionType string `json:"definition_type,omitempty"`
	// Definition is e.g. "TLP:AMBER" or "PAP:GREEN".
	Definition string `json:"definition,omitempty"`
}

// MarkingRefs returns one Marking per id, for entities known only by their
// object_marking_refs.
func MarkingRefs(ids []string) []Marking {
	ms := make([]Marking, len(ids))
	for i, id := range ids {
		ms[i] = Marking{StandardID: id}
	}
	return ms
}

// tlpMarking classifies m: isTLP reports whether it is a TLP marking at
// all, level and known its level when it is one OpenCTI knows.
func (m Marking) tlpMarking() (level TLP, known, isTLP bool) {
	def := strings.ToUpper(m.Definition)
	if strings.EqualFold(m.DefinitionType, "TLP") || m.DefinitionType == "" && strings.HasPrefix(def, "TLP:") {
		if level, known = tlpByName[def]; known || m.Definition != "" {
			return level, known, true
		}
		level, known = TLPFromMarkingID(m.StandardID)
		return level, known, true
	}
	if m.DefinitionType == "" && m.Definition == "" {
		level, known = TLPFromMarkingID(m.StandardID)
		return level, known, known
	}
	return 0, false, false
}

// EntityTLP returns the TLP level of an entity with these markings, decided
// as the original VirusTotal connector does: starting from TLP:CLEAR, each
// TLP marking in list order replaces the level, so the last one wins;
// markings of other types (PAP, statements) are ignored. A marking counts as
// TLP when its definition type is "TLP" (any case), when it has no type and
// its definition starts with "TLP:", or when it carries only the id of one
// of the fixed TLP marking definitions (a TLP marking with an empty
// definition is also resolved by its id). Definitions are compared
// case-insensitively but otherwise exactly, as pycti does. ok is false when
// the deciding marking is a TLP marking OpenCTI does not know (e.g.
// "TLP:EX:CHIM"), in which case level is 0.
func EntityTLP(markings []Marking) (level TLP, ok bool) {
	level, ok = TLPClear, true
	for _, m := range markings {
		if l, known, isTLP := m.tlpMarking(); isTLP {
			level, ok = l, known
		}
	}
	return level, ok
}

// TLPAllowed reports whether an entity with these markings may be sent to
// VirusTotal under the maximum level maxTLP, matching the original
// connector's gate (EntityTLP, then pycti's check_max_tlp): the entity's
// level must be known and at most maxTLP. TLP:AMBER+STRICT is above
// TLP:AMBER, so a maximum of TLP:AMBER refuses it. An invalid maxTLP
// refuses everything (pycti would raise a KeyError on an unknown maximum).
func TLPAllowed(markings []Marking, maxTLP TLP) bool {
	level, ok := EntityTLP(markings)
	return ok && maxTLP.Valid() && level <= maxTLP
}

// ErrTLPBlocked is returned by CheckTLP when an entity may not be sent. Its
// text is the original connector's work message, verbatim.
var ErrTLPBlocked = errors.New("Do not send any data, TLP of the observable is greater than MAX TLP") //nolint:staticcheck,revive // the original's message

// CheckTLP is the fail-closed gate: every marking must be resolved to its
// definition (a Marking with a Definition, or the id of a fixed TLP
// marking); a TLP marking above maxTLP, a TLP marking OpenCTI does not
// know (e.g. "TLP:EX:CHIM") or a marking that is only an unknown id blocks,
// whatever its place in the list. Markings of other types (PAP,
// statements) do not count. The error wraps ErrTLPBlocked and says which
// marking blocked and why.
func CheckTLP(markings []Marking, maxTLP TLP) error {
	if !maxTLP.Valid() {
		return fmt.Errorf("%w: the maximum %s is not a TLP level", ErrTLPBlocked, maxTLP)
	}
	for _, m := range markings {
		if m.Definition == "" && m.DefinitionType == "" {
			if _, ok := TLPFromMarkingID(m.StandardID); !ok {
				return fmt.Errorf("%w: the marking %s could not be resolved to its definition, so the entity is not sent", ErrTLPBlocked, m.StandardID)
			}
		}
		level, known, isTLP := m.tlpMarking()
		switch {
		case !isTLP:
		case !known:
			return fmt.Errorf("%w: the entity is marked %q (%s), a TLP OpenCTI does not know", ErrTLPBlocked, m.Definition, m.StandardID)
		case level > maxTLP:
			return fmt.Errorf("%w: the entity is marked %s (%s) and VIRUSTOTAL_MAX_TLP is %s", ErrTLPBlocked, level, markingName(m), maxTLP)
		}
	}
	return nil
}

func markingName(m Marking) string {
	if m.StandardID == "" {
		return m.Definition
	}
	return m.StandardID
}
