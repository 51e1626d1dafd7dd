package opencti

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGrantCarriesTheEntitysOrganisationsOntoEveryObject(t *testing.T) {
	entity := []byte(`{"id":"ipv4-addr--1","extensions":{"` + extOpenCTI + `":{"granted_refs":["identity--org-a","identity--org-b"]}}}`)
	refs := grantedRefs(entity)
	if diff := cmp.Diff([]string{"identity--org-a", "identity--org-b"}, refs); diff != "" {
		t.Fatalf("granted refs (-want +got):\n%s", diff)
	}
	if got := grantedRefs([]byte(`{"x_opencti_granted_refs":["identity--top"]}`)); !cmp.Equal(got, []string{"identity--top"}) {
		t.Errorf("x_opencti_granted_refs read as %v", got)
	}
	objects := []json.RawMessage{
		json.RawMessage(`{"id":"note--1","type":"note"}`),
		json.RawMessage(`{"id":"indicator--1","extensions":{"` + extOpenCTI + `":{"score":50,"granted_refs":["identity--org-b","identity--org-c"]}}}`),
		json.RawMessage(`{"id":"ipv4-addr--1","x_opencti_granted_refs":["identity--org-a"]}`),
	}
	want := [][]string{
		{"identity--org-a", "identity--org-b"},
		{"identity--org-b", "identity--org-c", "identity--org-a"},
		{"identity--org-a", "identity--org-b"},
	}
	for i, raw := range grant(objects, refs) {
		var o struct {
			Top  []string `json:"x_opencti_granted_refs"`
			Exts map[string]struct {
				Granted []string `json:"granted_refs"`
				Score   int      `json:"score"`
			} `json:"extensions"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatal(err)
		}
		got := o.Top
		if ext, ok := o.Exts[extOpenCTI]; ok {
			got = ext.Granted
			if o.Top != nil || ext.Score != 50 {
				t.Errorf("object %d: granted outside its extension, or the extension lost a property: %s", i, raw)
			}
		}
		if diff := cmp.Diff(want[i], got); diff != "" {
			t.Errorf("object %d granted refs (-want +got):\n%s", i, diff)
		}
	}
	if got := grant(objects, nil); &got[0] != &objects[0] {
		t.Error("no organisation: the objects must be left as they are")
	}
}
