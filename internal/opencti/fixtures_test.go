package opencti

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/stix/stixschema"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// The -update flag rewrites the golden files under testdata/. Another file
// of the package may register the same flag, so it is defined only when
// missing (init runs after every package-level flag definition).
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files in testdata/")
	}
}

func enrUpdateGoldens() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// enrSharedDir is /work/shared seen from this package, read in place.
const enrSharedDir = "../../../shared"

// enrShared returns the path of a shared reference file, skipping the
// (fidelity) test when it is absent.
func enrShared(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(enrSharedDir, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("fidelity test: ../shared/%s absent (%v); it lives outside the repository", rel, err)
	}
	return p
}

// enrNow is the fixed clock of the tests.
var enrNow = time.Date(2026, time.May, 4, 12, 34, 56, 789_000_000, time.UTC)

var (
	tlpAmber = stix.TLPAmber.MarkingID()
	tlpGreen = stix.TLPGreen.MarkingID()
	tlpClear = stix.TLPClear.MarkingID()
)

// loadVTObject reads a synthetic VirusTotal answer {"data": {...}} from
// testdata/vt (the project's own fixtures, see testdata/SOURCES.md).
func loadVTObject(t *testing.T, name string) *vt.Object {
	t.Helper()
	return readVTObject(t, filepath.Join("testdata", "vt", name))
}

// loadRealVTObject reads a real VirusTotal recording from
// ../shared/testdata/vt, skipping the (fidelity) test when it is absent.
func loadRealVTObject(t *testing.T, name string) *vt.Object {
	t.Helper()
	return readVTObject(t, enrShared(t, "testdata/vt/"+name))
}

func readVTObject(t *testing.T, path string) *vt.Object {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	o, err := vt.DecodeObject(env.Data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return o
}

// vtObjectFromJSON builds a VirusTotal object from the JSON of its data
// member.
func vtObjectFromJSON(t *testing.T, data string) *vt.Object {
	t.Helper()
	o, err := vt.DecodeObject(json.RawMessage(data))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// withAttributes returns a copy of o whose raw attributes are changed by
// edit, re-decoded.
func withAttributes(t *testing.T, o *vt.Object, edit func(map[string]any)) *vt.Object {
	t.Helper()
	var data map[string]any
	if err := json.Unmarshal(o.Raw, &data); err != nil {
		t.Fatal(err)
	}
	attrs, _ := data["attributes"].(map[string]any)
	if attrs == nil {
		attrs = map[string]any{}
		data["attributes"] = attrs
	}
	edit(attrs)
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return vtObjectFromJSON(t, string(raw))
}

func decodeEntityJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// mustEntity parses an entity, failing the test on error.
func mustEntity(t *testing.T, entityType string, obj map[string]any) Entity {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := obj["id"].(string)
	e, err := ParseEntity(id, entityType, data)
	if err != nil {
		t.Fatalf("ParseEntity: %v", err)
	}
	return e
}

func fileEntity(t *testing.T, entityType, sha256 string, markings []string, extra map[string]any) Entity {
	t.Helper()
	hashes := stix.Hashes{stix.HashSHA256: sha256}
	stixType := "file"
	id, err := stix.FileID(hashes, "")
	if entityType == TypeArtifact {
		stixType = "artifact"
		id, err = stix.ArtifactID(hashes, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{"type": stixType, "spec_version": "2.1", "id": id, "hashes": map[string]any{"SHA-256": sha256}}
	if entityType == TypeArtifact {
		// STIX requires url (with hashes) or payload_bin of an artifact.
		obj["url"] = "https://opencti.example/storage/get/import/Artifact/" + sha256
	}
	if len(markings) > 0 {
		obj["object_marking_refs"] = stringsToAny(markings)
	}
	for k, v := range extra {
		obj[k] = v
	}
	return mustEntity(t, entityType, obj)
}

func valueObservable(t *testing.T, entityType, value string, markings []string, extra map[string]any) Entity {
	t.Helper()
	stixType := stixTypes[entityType]
	obj := map[string]any{"type": stixType, "spec_version": "2.1", "id": stix.ObservableValueID(stixType, value), "value": value}
	if len(markings) > 0 {
		obj["object_marking_refs"] = stringsToAny(markings)
	}
	for k, v := range extra {
		obj[k] = v
	}
	return mustEntity(t, entityType, obj)
}

// hybridFileEntity is the real stix_entity of the hybrid-analysis
// connector's StixFile message (../shared/testdata/opencti), with the
// fixture's SHA-256 added (it has no hash) and the message's TLP:AMBER as a
// marking ref. It skips the (fidelity) test without ../shared.
func hybridFileEntity(t *testing.T, sha256 string) Entity {
	t.Helper()
	data, err := os.ReadFile(enrShared(t, "testdata/opencti/enrichment_message_file_hybrid.json"))
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		StixEntity json.RawMessage `json:"stix_entity"`
	}
	if err := json.Unmarshal(data, &msg); err != nil {
		t.Fatal(err)
	}
	return pyctiFileEntity(t, string(msg.StixEntity), sha256)
}

// syntheticStixFileEntity is a stix_entity written by the project in the
// shape pycti hands an enrichment connector for a StixFile (a
// platform-assigned random id, a name, no hash), with sha256 and TLP:AMBER
// added as hybridFileEntity does.
func syntheticStixFileEntity(t *testing.T, sha256 string) Entity {
	t.Helper()
	return pyctiFileEntity(t, `{"type": "file", "id": "file--5b7c7a52-3f0e-4d6b-9a51-0c2d4e6f8a91", "name": "invoice.dll"}`, sha256)
}

func pyctiFileEntity(t *testing.T, stixEntity, sha256 string) Entity {
	t.Helper()
	obj := decodeEntityJSON(t, stixEntity)
	obj["hashes"] = map[string]any{"SHA-256": sha256}
	obj["object_marking_refs"] = []any{tlpAmber}
	return mustEntity(t, TypeStixFile, obj)
}

// enrOptions are the settings of the golden builds: everything on.
func enrOptions() Options {
	return Options{
		ReplaceWithLowerScore:    false,
		IncludeAttributesInNote:  true,
		FileCreateNoteFullReport: true,
		FileImportYARA:           true,
		FileIndicator:            IndicatorPolicy{CreatePositives: 10, ValidMinutes: 2880, Detect: true},
		IPIndicator:              IndicatorPolicy{CreatePositives: 3, ValidMinutes: 1440, Detect: true},
		DomainIndicator:          IndicatorPolicy{CreatePositives: 10, ValidMinutes: 2880, Detect: false},
		URLIndicator:             IndicatorPolicy{CreatePositives: 10, ValidMinutes: 60, Detect: true},
		IPAddRelationships:       true,
		DomainAddRelationships:   true,
	}
}

func enrInput(e Entity, report *vt.Object, rulesets map[string]*vt.Object) Input {
	return Input{Entity: e, Report: report, Rulesets: rulesets, Author: VTIdentity(enrNow), Now: enrNow, Opts: enrOptions()}
}

// decodeObjects decodes the output objects as generic JSON.
func decodeObjects(t *testing.T, out Output) []map[string]any {
	t.Helper()
	objs := make([]map[string]any, len(out.Objects))
	for i, raw := range out.Objects {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&objs[i]); err != nil {
			t.Fatalf("object %d: %v\n%s", i, err, raw)
		}
	}
	return objs
}

// goldenBuild is what a golden file holds.
type goldenBuild struct {
	Score     int               `json:"score"`
	ScoreKept bool              `json:"score_kept"`
	Warnings  []string          `json:"warnings"`
	Objects   []json.RawMessage `json:"objects"`
}

// checkGolden compares out with testdata/<name>.golden.json, rewriting it
// with -update.
func checkGolden(t *testing.T, name string, out Output) {
	t.Helper()
	g := goldenBuild{Score: out.Score, ScoreKept: out.ScoreKept, Warnings: out.Warnings, Objects: out.Objects}
	if g.Warnings == nil {
		g.Warnings = []string{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".golden.json")
	if enrUpdateGoldens() {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("%s differs (-want +got), rerun with -update if intended:\n%s", path, diff)
	}
}

var (
	enrSchemaOnce sync.Once
	enrSchemas    *stixschema.Validator
)

// validateObjects validates every object against its type's official
// STIX 2.1 schema, in a subtest: that check is a fidelity test (the schemas
// are in ../shared/spec), so without them only the subtest skips and the
// behaviour checks of the calling test still run.
func validateObjects(t *testing.T, out Output) {
	t.Helper()
	t.Run("schema (fidelity)", func(t *testing.T) {
		dir := enrShared(t, "spec/stix2.1-json-schemas")
		enrSchemaOnce.Do(func() { enrSchemas = stixschema.New(dir) })
		for i, raw := range out.Objects {
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				t.Fatalf("object %d: %v", i, err)
			}
			m, _ := inst.(map[string]any)
			typ, _ := m["type"].(string)
			if err := enrSchemas.ValidateObject(raw); err != nil {
				t.Errorf("object %d (%s) does not validate:\n%s\n%v", i, typ, raw, err)
			}
		}
	})
}

// checkIDs checks every created object's id against the stix package's
// deterministic id functions, and that every reference resolves to an
// object of the bundle, the enriched entity or a marking definition.
func checkIDs(t *testing.T, objs []map[string]any) {
	t.Helper()
	ids := map[string]bool{}
	for _, o := range objs {
		if id, ok := o["id"].(string); ok {
			ids[id] = true
		}
	}
	str := func(o map[string]any, k string) string { s, _ := o[k].(string); return s }
	for i, o := range objs {
		if i == 0 {
			continue // the enriched entity keeps the platform's id
		}
		id, typ := str(o, "id"), str(o, "type")
		var want string
		switch typ {
		case "identity":
			want = stix.IdentityID(str(o, "name"), str(o, "identity_class"))
		case "indicator":
			want = stix.IndicatorID(str(o, "pattern"))
		case "relationship":
			want = stix.RelationshipID(str(o, "relationship_type"), str(o, "source_ref"), str(o, "target_ref"), time.Time{}, time.Time{})
		case "note":
			for _, kind := range []string{noteKindReport, noteKindResults, noteKindScore} {
				for _, ref := range o["object_refs"].([]any) {
					if c := stableNoteID(kind, ref.(string)); c == id {
						want = c
					}
				}
			}
		case "location":
			want = stix.LocationID(str(o, "name"), str(o, "x_opencti_location_type"))
		case "autonomous-system":
			n, _ := o["number"].(json.Number).Int64()
			want = stix.AutonomousSystemID(n)
		case "ipv4-addr", "domain-name", "hostname", "url":
			want = stix.ObservableValueID(typ, str(o, "value"))
		case "file", "artifact":
			h := stix.Hashes{}
			for k, v := range o["hashes"].(map[string]any) {
				h[k] = v.(string)
			}
			if typ == "file" {
				want, _ = stix.FileID(h, "")
			} else {
				want, _ = stix.ArtifactID(h, "")
			}
		default:
			t.Errorf("object %d: unexpected type %s", i, typ)
			continue
		}
		if id != want {
			t.Errorf("object %d (%s) id = %s, want %s", i, typ, id, want)
		}
		for k, v := range o {
			var refs []string
			switch {
			case strings.HasSuffix(k, "_ref"):
				refs = []string{v.(string)}
			case strings.HasSuffix(k, "_refs") && k != "object_marking_refs":
				for _, r := range v.([]any) {
					refs = append(refs, r.(string))
				}
			}
			for _, r := range refs {
				if !ids[r] {
					t.Errorf("object %d (%s) %s %s is not in the bundle", i, typ, k, r)
				}
			}
		}
	}
}

// checkMarkings checks that every created object carries exactly the
// entity's markings and that the author carries none.
func checkMarkings(t *testing.T, objs []map[string]any, want []string) {
	t.Helper()
	for i, o := range objs[1:] {
		var got []string
		for _, m := range asList(o["object_marking_refs"]) {
			got = append(got, m.(string))
		}
		exp := want
		if i == 0 {
			exp = nil // the author identity
		}
		if !slices.Equal(got, exp) {
			t.Errorf("object %d (%s %s) markings = %v, want %v", i+1, o["type"], o["id"], got, exp)
		}
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

// byType returns the objects of a type, in order.
func byType(objs []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o["type"] == typ {
			out = append(out, o)
		}
	}
	return out
}
