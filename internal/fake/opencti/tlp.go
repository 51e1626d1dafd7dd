package opencti

import "strings"

// tlpMarking is one of the TLP marking definitions the platform ships,
// with its fixed id (§9.2), its order and its color.
type tlpMarking struct {
	name  string // "TLP:AMBER"
	id    string
	order int
	color string
}

// tlpMarkings are the platform's TLP marking definitions. TLP:WHITE is
// TLP:CLEAR.
var tlpMarkings = []tlpMarking{
	{"TLP:CLEAR", "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", 1, "#ffffff"},
	{"TLP:GREEN", "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", 2, "#2e7d32"},
	{"TLP:AMBER", "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", 3, "#d84315"},
	{"TLP:AMBER+STRICT", "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37", 3, "#d84315"},
	{"TLP:RED", "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", 4, "#c62828"},
}

// tlpByMarkingID finds a TLP marking by its fixed id.
var tlpByMarkingID = func() map[string]tlpMarking {
	m := make(map[string]tlpMarking, len(tlpMarkings))
	for _, t := range tlpMarkings {
		m[t.id] = t
	}
	return m
}()

// tlpByName finds a TLP marking by its name, case-insensitively and
// ignoring surrounding white space.
func tlpByName(name string) (tlpMarking, bool) {
	name = strings.ToUpper(strings.TrimSpace(name))
	if name == "TLP:WHITE" {
		name = "TLP:CLEAR"
	}
	for _, t := range tlpMarkings {
		if t.name == name {
			return t, true
		}
	}
	return tlpMarking{}, false
}

// tlpCreated is the created time of the STIX TLP marking definitions.
const tlpCreated = "2017-01-20T00:00:00.000Z"

// stixObject is the STIX 2.1 marking definition of a TLP level, as the
// platform exports it (the STIX form: definition_type "tlp",
// definition {"tlp": "amber"}).
func (t tlpMarking) stixObject() map[string]any {
	return map[string]any{
		"type": "marking-definition", "spec_version": specVersion, "id": t.id,
		"created": tlpCreated, "name": t.name, "definition_type": "tlp",
		"definition": map[string]any{"tlp": strings.ToLower(strings.TrimPrefix(t.name, "TLP:"))},
	}
}
