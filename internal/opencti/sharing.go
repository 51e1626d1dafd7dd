package opencti

import (
	"encoding/json"
	"slices"
)

// Organisation sharing, as pycti does it: the organisations the enriched
// entity is shared with (x_opencti_granted_refs, or granted_refs in its
// OpenCTI extension) are granted every object the connector sends, so
// that users of those organisations see the enrichment.

// extOpenCTI is the OpenCTI SDO extension definition.
const extOpenCTI = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"

// grantedRefs reads the organisations an entity is shared with.
func grantedRefs(entity []byte) []string {
	var o struct {
		Granted    []string `json:"x_opencti_granted_refs"`
		Extensions map[string]struct {
			Granted []string `json:"granted_refs"`
		} `json:"extensions"`
	}
	if json.Unmarshal(entity, &o) != nil {
		return nil
	}
	if o.Granted != nil {
		return o.Granted
	}
	return o.Extensions[extOpenCTI].Granted
}

// grant adds refs to every object: to granted_refs of its OpenCTI
// extension when it has one, else to x_opencti_granted_refs, keeping
// those already there (first) and adding each organisation once.
func grant(objects []json.RawMessage, refs []string) []json.RawMessage {
	if len(refs) == 0 {
		return objects
	}
	out := make([]json.RawMessage, len(objects))
	for i, raw := range objects {
		var o map[string]json.RawMessage
		if json.Unmarshal(raw, &o) != nil {
			out[i] = raw
			continue
		}
		var exts map[string]map[string]json.RawMessage
		_ = json.Unmarshal(o["extensions"], &exts)
		if ext, ok := exts[extOpenCTI]; ok && ext != nil {
			ext["granted_refs"] = union(ext["granted_refs"], refs)
			o["extensions"], _ = json.Marshal(exts)
		} else {
			o["x_opencti_granted_refs"] = union(o["x_opencti_granted_refs"], refs)
		}
		b, err := json.Marshal(o)
		if err != nil {
			out[i] = raw
			continue
		}
		out[i] = b
	}
	return out
}

func union(have json.RawMessage, add []string) json.RawMessage {
	var list []string
	_ = json.Unmarshal(have, &list)
	for _, r := range add {
		if !slices.Contains(list, r) {
			list = append(list, r)
		}
	}
	b, _ := json.Marshal(list)
	return b
}
