package opencti

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// splitPiece is one object of a split bundle and its dependency count.
type splitPiece struct {
	ID     string
	NbDeps int
}

// bundleSet is a set of pycti-style bundles the worker tests run on: the
// project's hand-written ones (testdata/, see testdata/SOURCES.md) and, as
// a fidelity test, pycti's own test bundles (../shared/testdata/opencti).
type bundleSet struct {
	name string
	dir  string // "" for ../shared/testdata/opencti
	// splitSample holds a malware, an identity, a marking that references
	// itself, a sighting, a report (referencing an observed-data that is
	// not in the bundle) and a relationship; splitWant is how pycti splits
	// it.
	splitSample string
	splitWant   []splitPiece
	// indicator holds indicators whose author is not in the bundle, with a
	// marking the platform knows.
	indicator string
	// monoRelationship is a relationship between objects the platform does
	// not have; missingRefs is how the worker's error lists them.
	monoRelationship, missingRefs string
	// malwareWithSample holds a malware and its sample file, in that order.
	malwareWithSample string
}

var bundleSets = []bundleSet{
	{
		name:        "synthetic",
		dir:         "testdata",
		splitSample: "pycti_style_bundle_split_sample.json",
		// malware, identity, marking: no dependency in the bundle;
		// sighting: 1 + malware + identity; report: 1 + identity + marking
		// + malware (the observed-data it also references is not in the
		// bundle); relationship: 1 + identity + marking + malware + report.
		splitWant: []splitPiece{
			{"malware--104dc66c-d3b9-4609-b4c3-0dde563cf148", 1},
			{"identity--bed834aa-9df7-4d36-86fd-89025e8002fd", 1},
			{"marking-definition--c4aa853f-e547-4e13-a89e-d18b6efb25cc", 1},
			{"sighting--a27a40cf-ca76-4097-9900-24a4988ec4e8", 3},
			{"report--73936b86-05fb-407c-94c6-36b7f2f801ed", 4},
			{"relationship--7e6da653-1312-4d69-abd4-7595734f8fb9", 8},
		},
		indicator:         "pycti_style_bundle_indicator.json",
		monoRelationship:  "pycti_style_bundle_mono_relationship.json",
		missingRefs:       "identity--not-available, malware--32a18c0e-734d-4eae-8e26-634e381e9601",
		malwareWithSample: "pycti_style_bundle_malware_with_sample.json",
	},
	{
		name:        "real (fidelity)",
		splitSample: "pycti_bundle_ids_sample.json",
		splitWant: []splitPiece{
			{"malware--d650c5b9-4b43-5781-8576-ea52bd6c7ce5", 1},
			{"identity--7b82b010-b1c0-4dae-981f-7756374a17da", 1},
			{"marking-definition--78ca4366-f5b8-4764-83f7-34ce38198e27", 1},
			{"sighting--ee20065d-2555-424f-ad9e-0f8428623c75", 3},
			{"report--a445d22a-db0c-4b5d-9ec8-e9ad0b6dbdd7", 4},
			{"relationship--ba52fced-422a-4bee-816a-85aa21c9eacc", 8},
		},
		indicator:         "pycti_bundle_indicator.json",
		monoRelationship:  "pycti_bundle_mono_relationship.json",
		missingRefs:       "identity--not-available, malware--faa5b705-cf44-4e50-8472-29e5fec43c3c",
		malwareWithSample: "pycti_bundle_malware_with_sample.json",
	},
}

// forEachBundleSet runs f in a subtest per bundle set; the real one skips
// when ../shared/testdata/opencti is absent.
func forEachBundleSet(t *testing.T, f func(t *testing.T, set bundleSet)) {
	t.Helper()
	for _, set := range bundleSets {
		t.Run(set.name, func(t *testing.T) {
			if set.dir == "" {
				set.dir = sharedFile(t, "testdata/opencti")
			}
			f(t, set)
		})
	}
}

// loadBundle reads a bundle of the set.
func (set bundleSet) loadBundle(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(set.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return b
}

func objectsOf(b map[string]any) []map[string]any {
	var out []map[string]any
	for _, o := range b["objects"].([]any) {
		out = append(out, o.(map[string]any))
	}
	return out
}

// deterministicIndicatorBundle is the set's indicator bundle made as a
// connector using internal/stix would send it: indicator ids derived from
// their patterns and their author, a deterministic identity, in the bundle.
func deterministicIndicatorBundle(t *testing.T, set bundleSet) map[string]any {
	b := set.loadBundle(t, set.indicator)
	author := map[string]any{
		"type": "identity", "spec_version": "2.1", "id": stix.IdentityID("Example Corp", stix.IdentityClassOrganization),
		"name": "Example Corp", "identity_class": "organization",
		"created": "2020-04-30T06:29:41.232Z", "modified": "2020-04-30T06:29:41.232Z",
	}
	for _, o := range objectsOf(b) {
		o["id"] = stix.IndicatorID(o["pattern"].(string))
		o["created_by_ref"] = author["id"]
	}
	b["objects"] = append(b["objects"].([]any), author)
	return b
}

// startWork creates a work through workAdd and moves it to progress as
// pycti does when a message arrives.
func startWork(t *testing.T, p *Platform, cid string) string {
	t.Helper()
	var w struct {
		WorkAdd struct{ ID string } `json:"workAdd"`
	}
	mustGQL(t, p, workAddQuery, map[string]any{"connectorId": cid, "friendlyName": "test run"}, &w)
	mustGQL(t, p, toReceivedQuery, map[string]any{"id": w.WorkAdd.ID, "message": "Connector ready to process the operation"}, nil)
	return w.WorkAdd.ID
}

// sendBundle does what pycti's send_stix2_bundle then _data_handler do for
// a bundle: split, addExpectations, publish, toProcessed.
func sendBundle(t *testing.T, p *Platform, cid, wid string, b map[string]any) []map[string]any {
	t.Helper()
	pieces := splitBundle(b)
	mustGQL(t, p, addExpectationsQuery, map[string]any{"id": wid, "expectations": len(pieces)}, nil)
	pushBundles(t, p, testConn(t, p), cid, wid, pieces...)
	return pieces
}

func TestWorkerImportsAPushedBundleAndTheWorkCompletesAfterToProcessed(t *testing.T) {
	forEachBundleSet(t, testWorkerImportsAPushedBundleAndTheWorkCompletesAfterToProcessed)
}

func testWorkerImportsAPushedBundleAndTheWorkCompletesAfterToProcessed(t *testing.T, set bundleSet) {
	p := newPlatform(t, nil)
	cid := register(t, p, "IPv4-Addr")
	wid := startWork(t, p, cid)
	b := deterministicIndicatorBundle(t, set)
	ids := []string{}
	for _, o := range objectsOf(b) {
		ids = append(ids, o["id"].(string))
	}
	sendBundle(t, p, cid, wid, b)

	st := waitWork(t, p, wid, "3 objects processed", func(s WorkState) bool { return s.Processed == 3 })
	if st.Status != statusProgress || st.Expected != 3 {
		t.Errorf("before toProcessed: status %s expected %d", st.Status, st.Expected)
	}
	mustGQL(t, p, toProcessedQuery, map[string]any{"id": wid, "message": "Sent 3 stix bundle(s) for worker import"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := p.WaitWork(ctx, wid, statusComplete)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Errors) > 0 || st.CompletedNumber != 3 || st.CompletedTime.IsZero() || st.ProcessedTime.IsZero() {
		t.Errorf("completed work %+v", st)
	}
	msgs := []string{}
	for _, m := range st.Messages {
		msgs = append(msgs, m.Message)
	}
	if diff := cmp.Diff([]string{"Connector ready to process the operation", "Sent 3 stix bundle(s) for worker import"}, msgs); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
	// The worker received what pycti publishes, in dependency order: the
	// author first.
	if len(st.Bundles) != 3 {
		t.Fatalf("%d bundles recorded", len(st.Bundles))
	}
	var first map[string]any
	_ = json.Unmarshal(st.Bundles[0].Bundle, &first)
	if first["objects"].([]any)[0].(map[string]any)["type"] != "identity" || first["x_opencti_seq"] != float64(1) {
		t.Errorf("first bundle %s", st.Bundles[0].Bundle)
	}
	for _, pb := range st.Bundles {
		if pb.DeliveryMode != 2 || pb.ContentEncoding != "utf-8" || pb.Objects != 1 || pb.Split || pb.Error != "" {
			t.Errorf("pushed bundle %+v", pb)
		}
	}
	objs, writes := p.Objects(), p.Writes()
	if got := slices.Sorted(maps.Keys(objs)); !slices.Equal(got, slices.Sorted(slices.Values(ids))) {
		t.Errorf("imported %v, want %v", got, ids)
	}
	for _, id := range ids {
		if writes[id] != 1 {
			t.Errorf("%s written %d times", id, writes[id])
		}
		var o map[string]any
		_ = json.Unmarshal(objs[id], &o)
		if _, ok := o["nb_deps"]; ok {
			t.Errorf("%s stored with the splitter's nb_deps", id)
		}
	}

	// The same objects again (a re-enrichment) are upserted: written twice.
	wid2 := startWork(t, p, cid)
	sendBundle(t, p, cid, wid2, deterministicIndicatorBundle(t, set))
	mustGQL(t, p, toProcessedQuery, map[string]any{"id": wid2, "message": "again"}, nil)
	if _, err := p.WaitWork(ctx, wid2, statusComplete); err != nil {
		t.Fatal(err)
	}
	for id, n := range p.Writes() {
		if n != 2 {
			t.Errorf("%s written %d times after a second push", id, n)
		}
	}
}

func TestWorkerFlagsBadObjects(t *testing.T) {
	forEachBundleSet(t, testWorkerFlagsBadObjects)
}

func testWorkerFlagsBadObjects(t *testing.T, set bundleSet) {
	p := newPlatform(t, nil)
	cid := register(t, p, "IPv4-Addr")
	firstPattern := objectsOf(set.loadBundle(t, set.indicator))[0]["pattern"].(string)
	indicator := func(change func(o map[string]any)) map[string]any {
		o := objectsOf(set.loadBundle(t, set.indicator))[0]
		o["id"] = stix.IndicatorID(o["pattern"].(string))
		delete(o, "created_by_ref")
		change(o)
		return map[string]any{"type": "bundle", "id": "bundle--" + uuidV4(), "objects": []any{o}}
	}
	tests := []struct {
		name     string
		bundle   map[string]any
		codes    []string
		imported bool
		message  string
	}{
		{"dangling created_by_ref", indicator(func(o map[string]any) {
			o["created_by_ref"] = "identity--26926631-96e9-40e9-9ac0-ab93384f0ce7"
		}), []string{CodeMissingReference}, false, "identity--26926631-96e9-40e9-9ac0-ab93384f0ce7"},
		{"random indicator id", indicator(func(o map[string]any) {
			o["id"] = "indicator--39915430-6d24-4f9d-a871-76a264169674"
		}), []string{CodeIDMismatch}, true, stix.IndicatorID(firstPattern)},
		{"dangling ref in an extension", indicator(func(o map[string]any) {
			o["extensions"] = map[string]any{stix.ExtensionOpenCTISCO: map[string]any{"granted_refs": []any{"identity--0d0c5c5e-6a4e-4b8e-9f3c-0a3b6f0f5e21"}}}
		}), []string{CodeMissingReference}, false, "identity--0d0c5c5e"},
		{"relationship between unknown objects", set.loadBundle(t, set.monoRelationship),
			[]string{CodeMissingReference}, false, set.missingRefs},
		{"id that is not a UUID", indicator(func(o map[string]any) { o["id"] = "indicator--1234" }),
			[]string{CodeInvalidObject}, false, "does not end with a UUID"},
		{"file without hashes nor name", map[string]any{"type": "bundle", "id": "bundle--" + uuidV4(), "objects": []any{
			map[string]any{"type": "file", "spec_version": "2.1", "id": "file--" + uuidV4(), "size": 3},
		}}, []string{CodeInvalidObject}, false, "Missing required elements"},
		{"known references resolve", indicator(func(o map[string]any) {
			o["object_marking_refs"] = []any{stix.TLPRed.MarkingID()}
			o["x_opencti_created_by_ref"] = nil
		}), nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wid := startWork(t, p, cid)
			id := tt.bundle["objects"].([]any)[0].(map[string]any)["id"].(string)
			sendBundle(t, p, cid, wid, tt.bundle)
			mustGQL(t, p, toProcessedQuery, map[string]any{"id": wid, "message": "done"}, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			st, err := p.WaitWork(ctx, wid, statusComplete)
			if err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, e := range st.Errors {
				codes = append(codes, e.Code)
				if !strings.Contains(e.Message, tt.message) || e.ObjectID != id || !strings.Contains(e.Source, `"type":`) {
					t.Errorf("error %+v, want a message containing %q", e, tt.message)
				}
			}
			if !slices.Equal(codes, tt.codes) {
				t.Errorf("error codes %v, want %v", codes, tt.codes)
			}
			if _, ok := p.Objects()[id]; ok != tt.imported {
				t.Errorf("%s imported: %v, want %v", id, ok, tt.imported)
			}
		})
	}
}

func TestWorkerSplitsMultiObjectMessages(t *testing.T) {
	forEachBundleSet(t, testWorkerSplitsMultiObjectMessages)
}

func testWorkerSplitsMultiObjectMessages(t *testing.T, set bundleSet) {
	p := newPlatform(t, nil)
	cid := register(t, p, "StixFile")
	wid := startWork(t, p, cid)
	b := set.loadBundle(t, set.malwareWithSample)
	objs := objectsOf(b)
	malwareID, fileID := objs[0]["id"].(string), objs[1]["id"].(string)
	// One unsplit message and no expectation: the worker splits it, adds 2
	// expectations and republishes one object per message. (toProcessed
	// before that would complete the work at once: nothing was expected.)
	pushBundles(t, p, testConn(t, p), cid, wid, b)
	waitWork(t, p, wid, "2 objects processed", func(s WorkState) bool { return s.Processed == 2 })
	mustGQL(t, p, toProcessedQuery, map[string]any{"id": wid, "message": "Sent 1 stix bundle(s) for worker import"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := p.WaitWork(ctx, wid, statusComplete)
	if err != nil {
		t.Fatal(err)
	}
	if st.Expected != 2 || st.Processed != 2 || len(st.Bundles) != 3 || !st.Bundles[0].Split || st.Bundles[0].Objects != 2 {
		t.Fatalf("work %+v", st)
	}
	var second map[string]any
	_ = json.Unmarshal(st.Bundles[1].Bundle, &second)
	if got := second["objects"].([]any)[0].(map[string]any)["id"]; got != fileID {
		t.Errorf("first republished object %v, want the sample file %s (fewer dependencies)", got, fileID)
	}
	wantCodes := map[string]string{}
	if malwareID != stix.MalwareID(objs[0]["name"].(string)) {
		wantCodes[malwareID] = CodeIDMismatch
	}
	if want, _ := stix.FileID(nil, objs[1]["name"].(string)); fileID != want {
		wantCodes[fileID] = CodeIDMismatch
	}
	gotCodes := map[string]string{}
	for _, e := range st.Errors {
		gotCodes[e.ObjectID] = e.Code
	}
	if diff := cmp.Diff(wantCodes, gotCodes); diff != "" {
		t.Errorf("error codes by object (-want +got):\n%s", diff)
	}
	if len(p.Objects()) != 2 {
		t.Errorf("imported %d objects", len(p.Objects()))
	}
}

func TestEnrichmentResultUpdatesTheEntity(t *testing.T) {
	p := newPlatform(t, nil)
	cid := register(t, p, "IPv4-Addr")
	ip := p.AddEntity(Entity{Type: "IPv4-Addr", Value: "203.0.113.9"})
	wid, err := p.Enrich(t.Context(), cid, ip)
	if err != nil {
		t.Fatal(err)
	}
	mustGQL(t, p, toReceivedQuery, map[string]any{"id": wid, "message": "Connector ready to process the operation"}, nil)
	score := 80
	obs := stix.NewIPv4Addr("203.0.113.9")
	obs.Score = &score
	obs.Labels = []string{"malicious"}
	raw, _ := json.Marshal(stix.NewBundle(obs))
	var b map[string]any
	_ = json.Unmarshal(raw, &b)
	sendBundle(t, p, cid, wid, b)
	mustGQL(t, p, toProcessedQuery, map[string]any{"id": wid, "message": "Sent 1 stix bundle(s) for worker import"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if st, err := p.WaitWork(ctx, wid, statusComplete); err != nil || len(st.Errors) > 0 {
		t.Fatalf("work %+v: %v", st, err)
	}
	var got struct {
		O struct {
			Score  int                      `json:"x_opencti_score"`
			Labels []struct{ Value string } `json:"objectLabel"`
		} `json:"stixCyberObservable"`
	}
	mustGQL(t, p, `query($id: String!) { stixCyberObservable(id: $id) { x_opencti_score objectLabel { value } } }`, map[string]any{"id": ip}, &got)
	if got.O.Score != 80 || len(got.O.Labels) != 1 || got.O.Labels[0].Value != "malicious" {
		t.Errorf("entity after enrichment %+v", got.O)
	}
}

func TestStixBundlePush(t *testing.T) {
	p := newPlatform(t, nil)
	cid := register(t, p, "IPv4-Addr")
	const push = `mutation($c: String!, $b: String!, $w: String) { stixBundlePush(connectorId: $c, bundle: $b, work_id: $w) }`
	obs := stix.NewIPv4Addr("198.51.100.20")
	raw, _ := json.Marshal(stix.NewBundle(obs))
	var ok struct {
		Push bool `json:"stixBundlePush"`
	}
	mustGQL(t, p, push, map[string]any{"c": cid, "b": string(raw)}, &ok)
	if !ok.Push {
		t.Fatal("stixBundlePush returned false")
	}
	works := p.Works()
	if len(works) != 1 || !strings.HasPrefix(works[0].Name, "VirusTotal run @ ") || works[0].Expected != 1 {
		t.Fatalf("works %+v", works)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Nobody calls toProcessed for such a work: it completes on its own.
	st, err := p.WaitWork(ctx, works[0].ID, statusComplete)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	_ = json.Unmarshal(st.Bundles[0].Envelope, &env)
	if env["type"] != "bundle" || env["update"] != true || env["applicant_id"] != userIDForToken(testToken) {
		t.Errorf("platform envelope %v", env)
	}
	if _, ok := p.Objects()[obs.ID]; !ok {
		t.Error("pushed observable not imported")
	}

	for name, vars := range map[string]map[string]any{
		"not a bundle":      {"c": cid, "b": `{"type":"report"}`},
		"unknown connector": {"c": "nope", "b": string(raw)},
	} {
		res := gql(t, p, testToken, push, vars)
		if !slices.Equal(res.codes(), []string{"UNSUPPORTED_ERROR"}) || res.Errors[0].Message != "Invalid bundle" {
			t.Errorf("%s: %s", name, res.Raw)
		}
	}
}
