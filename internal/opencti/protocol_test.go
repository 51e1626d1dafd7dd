package opencti

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"sort"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// TestDocumentsMatchThePlatformSchema is a fidelity test: it validates
// every GraphQL document the connector sends against the platform's merged
// schema.
func TestDocumentsMatchThePlatformSchema(t *testing.T) {
	b, err := os.ReadFile(enrShared(t, "spec/opencti-relay.schema.graphql"))
	if err != nil {
		t.Fatal(err)
	}
	schema, gerr := gqlparser.LoadSchema(&ast.Source{Name: "opencti-relay.schema.graphql", Input: string(b)})
	if gerr != nil {
		t.Fatalf("load schema: %v", gerr)
	}
	names := make([]string, 0, len(Documents))
	for n := range Documents {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if _, errs := gqlparser.LoadQuery(schema, Documents[n]); len(errs) > 0 {
			t.Errorf("document %s is not valid against the platform schema: %v", n, errs)
		}
	}
}

func TestAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v, want string
		ok      bool
	}{
		{"6.8.10", "6.8.9", true}, {"6.8.9", "6.8.9", true}, {"6.8.8", "6.8.9", false},
		{"6.7.20", "6.8.9", false}, {"7.260817.0", "6.8.9", true}, {"6.2.11", "6.2.12", false},
		{"v6.9.0", "6.8.9", true}, {"", "6.8.9", true}, {"garbage", "5.11.0", true},
	} {
		if got := AtLeast(tc.v, tc.want); got != tc.ok {
			t.Errorf("AtLeast(%q, %q) = %v, want %v", tc.v, tc.want, got, tc.ok)
		}
	}
}

func TestSplitLikePycti(t *testing.T) {
	objs := []json.RawMessage{
		json.RawMessage(`{"type":"relationship","id":"relationship--1","source_ref":"indicator--2","target_ref":"ipv4-addr--3","created_by_ref":"identity--4"}`),
		json.RawMessage(`{"type":"indicator","id":"indicator--2","created_by_ref":"identity--4","object_marking_refs":["marking-definition--x"]}`),
		json.RawMessage(`{"type":"ipv4-addr","id":"ipv4-addr--3","value":"1.2.3.4"}`),
		json.RawMessage(`{"type":"identity","id":"identity--4","name":"VirusTotal"}`),
		json.RawMessage(`{"type":"note","id":"note--5","object_refs":["ipv4-addr--3","note--5"]}`),
	}
	parts, err := splitObjects("bundle--b", objs)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	var seqs []float64
	for _, p := range parts {
		var b struct {
			Type    string           `json:"type"`
			ID      string           `json:"id"`
			Seq     float64          `json:"x_opencti_seq"`
			Objects []map[string]any `json:"objects"`
		}
		if err := json.Unmarshal(p, &b); err != nil || b.Type != "bundle" || b.ID != "bundle--b" || len(b.Objects) != 1 {
			t.Fatalf("split bundle %s: %v", p, err)
		}
		order = append(order, b.Objects[0]["id"].(string))
		seqs = append(seqs, b.Seq)
		if b.Objects[0]["nb_deps"].(float64) != b.Seq {
			t.Errorf("%s: nb_deps %v, x_opencti_seq %v", order[len(order)-1], b.Objects[0]["nb_deps"], b.Seq)
		}
	}
	// ipv4 and identity (1) before the note (1+1; its self-reference cut)
	// and the indicator (1+1), before the relationship (1+2+1+1 = 5).
	want := []string{"ipv4-addr--3", "identity--4", "indicator--2", "note--5", "relationship--1"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v (seqs %v)", order, want, seqs)
		}
	}
	if seqs[4] != 5 {
		t.Errorf("relationship nb_deps %v, want 5", seqs[4])
	}
	if _, err := splitObjects("bundle--b", []json.RawMessage{json.RawMessage(`{"type":"x"}`)}); err == nil {
		t.Error("an object without an id was accepted")
	}
	if _, err := splitObjects("bundle--b", nil); err == nil {
		t.Error("an empty bundle was accepted")
	}
}

func TestEnvelopeLikePycti(t *testing.T) {
	draft := "draft-1"
	b, err := envelope([]byte(`{"type":"bundle"}`), 3, "user-1", "work-1", &draft)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	content, _ := base64.StdEncoding.DecodeString(m["content"].(string))
	if m["bundle_type"] != "QUEUE_BUNDLE" || m["applicant_id"] != "user-1" || m["action_sequence"].(float64) != 3 ||
		m["work_id"] != "work-1" || m["draft_id"] != "draft-1" || m["update"] != false || string(content) != `{"type":"bundle"}` {
		t.Errorf("envelope %s", b)
	}
	if _, has := m["type"]; has {
		t.Error("pycti sends no type key")
	}
	b, _ = envelope([]byte(`{}`), 1, "u", "", nil)
	var m2 map[string]any
	_ = json.Unmarshal(b, &m2)
	if _, has := m2["work_id"]; has {
		t.Errorf("work_id sent although there is no work: %s", b)
	}
	if v, has := m2["draft_id"]; !has || v != nil {
		t.Errorf("draft_id must be present and null: %s", b)
	}
}
