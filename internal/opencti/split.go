package opencti

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// splitObjects cuts a bundle into one-object bundles the way pycti's
// splitter does: every object gets nb_deps = 1 + the nb_deps of the
// objects of the bundle it references (through any top-level property
// ending in _ref or _refs; references outside the bundle are kept as
// they are), and the bundles are ordered by ascending nb_deps so that the
// worker imports what others refer to first.
func splitObjects(bundleID string, objects []json.RawMessage) ([][]byte, error) {
	type node struct {
		obj  map[string]any
		id   string
		deps int // -1 while being computed (cycle guard)
		seen bool
	}
	nodes := make([]*node, 0, len(objects))
	byID := map[string]*node{}
	for i, raw := range objects {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("opencti: split bundle: object %d is not a JSON object: %w", i, err)
		}
		id, _ := m["id"].(string)
		if id == "" || !strings.Contains(id, "--") {
			return nil, fmt.Errorf("opencti: split bundle: object %d has no STIX id", i)
		}
		if _, dup := byID[id]; dup {
			continue // the same object twice: keep the first
		}
		n := &node{obj: m, id: id}
		nodes = append(nodes, n)
		byID[id] = n
	}
	var deps func(n *node) int
	deps = func(n *node) int {
		if n.seen {
			if n.deps < 0 {
				return 0 // a cycle: cut it
			}
			return n.deps
		}
		n.seen, n.deps = true, -1
		total := 1
		for k, v := range n.obj {
			switch {
			case strings.HasSuffix(k, "_ref"):
				if s, ok := v.(string); ok && s != n.id {
					if m := byID[s]; m != nil {
						total += deps(m)
					}
				}
			case strings.HasSuffix(k, "_refs"):
				if list, ok := v.([]any); ok {
					for _, e := range list {
						if s, ok := e.(string); ok && s != n.id {
							if m := byID[s]; m != nil {
								total += deps(m)
							}
						}
					}
				}
			}
		}
		n.deps = total
		return total
	}
	for _, n := range nodes {
		deps(n)
	}
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].deps < nodes[j].deps })
	out := make([][]byte, 0, len(nodes))
	for _, n := range nodes {
		n.obj["nb_deps"] = n.deps
		b, err := json.Marshal(map[string]any{"type": "bundle", "id": bundleID, "spec_version": "2.1",
			"x_opencti_seq": n.deps, "objects": []any{n.obj}})
		if err != nil {
			return nil, fmt.Errorf("opencti: split bundle: %w", err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("opencti: split bundle: nothing to import")
	}
	return out, nil
}

// pushMessage is the envelope of one split bundle on the push queue, as
// pycti publishes it.
type pushMessage struct {
	BundleType     string   `json:"bundle_type"`
	ApplicantID    string   `json:"applicant_id"`
	ActionSequence int      `json:"action_sequence"`
	EntitiesTypes  []string `json:"entities_types"`
	Content        string   `json:"content"`
	Update         bool     `json:"update"`
	DraftID        *string  `json:"draft_id"`
	WorkID         string   `json:"work_id,omitempty"`
}

func envelope(bundle []byte, seq int, applicant, workID string, draftID *string) ([]byte, error) {
	return json.Marshal(pushMessage{
		BundleType: "QUEUE_BUNDLE", ApplicantID: applicant, ActionSequence: seq, EntitiesTypes: []string{},
		Content: base64.StdEncoding.EncodeToString(bundle), DraftID: draftID, WorkID: workID,
	})
}
