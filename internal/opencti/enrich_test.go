package opencti

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
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

// enrShared returns the path of a shared reference file, skipping the test
// when it is absent.
func enrShared(t *testing.T, rel string) string {
	t.Helper()
	p := filepath.Join(enrSharedDir, filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared reference %s not available (%v): it lives outside the repository in /work/shared", p, err)
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

// loadVTObject reads a VirusTotal answer {"data": {...}} from the shared
// samples.
func loadVTObject(t *testing.T, name string) *vt.Object {
	t.Helper()
	data, err := os.ReadFile(enrShared(t, "testdata/vt/"+name))
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	o, err := vt.DecodeObject(env.Data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
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
// connector's StixFile message, with the fixture's SHA-256 added (it has no
// hash) and the message's TLP:AMBER as a marking ref.
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
	obj := decodeEntityJSON(t, string(msg.StixEntity))
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

// validateObjects validates every object against its type's schema.
func validateObjects(t *testing.T, out Output) {
	t.Helper()
	for i, raw := range out.Objects {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("object %d: %v", i, err)
		}
		m, _ := inst.(map[string]any)
		typ, _ := m["type"].(string)
		dir := enrShared(t, "spec/stix2.1-json-schemas")
		enrSchemaOnce.Do(func() { enrSchemas = stixschema.New(dir) })
		if err := enrSchemas.ValidateObject(raw); err != nil {
			t.Errorf("object %d (%s) does not validate:\n%s\n%v", i, typ, raw, err)
		}
	}
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

// enrFixtureCase is one golden build from a VirusTotal sample.
type enrFixtureCase struct {
	fixture  string
	entity   func(t *testing.T, report *vt.Object) Entity
	markings []string
	rulesets []string
	edit     func(in *Input)
}

func enrFixtureCases() []enrFixtureCase {
	file := func(entityType string, markings []string, extra map[string]any) func(*testing.T, *vt.Object) Entity {
		return func(t *testing.T, r *vt.Object) Entity {
			return fileEntity(t, entityType, r.Attributes.SHA256, markings, extra)
		}
	}
	value := func(entityType string, markings []string, extra map[string]any) func(*testing.T, *vt.Object) Entity {
		return func(t *testing.T, r *vt.Object) Entity {
			v := r.ID
			if entityType == TypeURL {
				v = r.Attributes.URL
			}
			return valueObservable(t, entityType, v, markings, extra)
		}
	}
	scoExt := func(fields map[string]any) map[string]any {
		fields["extension_type"] = "property-extension"
		return map[string]any{"extensions": map[string]any{stix.ExtensionOpenCTISCO: fields}}
	}
	return []enrFixtureCase{
		{fixture: "file_malicious_4bc00f7d", markings: []string{tlpAmber}, rulesets: []string{"yara_ruleset_00888403c4"},
			entity: func(t *testing.T, r *vt.Object) Entity { return hybridFileEntity(t, r.Attributes.SHA256) }},
		{fixture: "file_malicious_6b60666d_win32exe_yara", markings: []string{tlpAmber}, entity: file(TypeStixFile, []string{tlpAmber},
			scoExt(map[string]any{"score": 95, "labels": []any{"PEEXE"}}))},
		{fixture: "file_malicious_b2ae6798_vba_yara", markings: []string{tlpGreen}, entity: file(TypeStixFile, []string{tlpGreen}, nil)},
		{fixture: "file_suspicious_09d58ba5_zip", markings: []string{tlpAmber, tlpGreen}, entity: file(TypeStixFile, []string{tlpAmber, tlpGreen}, map[string]any{"name": "pack.zip"})},
		{fixture: "file_clean_c99dba3b_android_yara", markings: []string{tlpClear}, entity: file(TypeArtifact, []string{tlpClear}, nil)},
		{fixture: "file_clean_f36005f6_elf", markings: nil, entity: file(TypeStixFile, nil, nil)},
		{fixture: "file_clean_f4468612_pdf", markings: []string{tlpAmber}, entity: file(TypeStixFile, []string{tlpAmber}, nil)},
		{fixture: "file_clean_f568a036_win32dll", markings: []string{tlpAmber}, entity: file(TypeStixFile, []string{tlpAmber}, map[string]any{"x_opencti_score": 50})},
		{fixture: "ip_138.128.150.133", markings: []string{tlpGreen}, entity: value(TypeIPv4Addr, []string{tlpGreen}, map[string]any{"x_opencti_score": 20})},
		{fixture: "ip_23.129.64.215", markings: []string{tlpAmber}, entity: value(TypeIPv4Addr, []string{tlpAmber}, nil)},
		{fixture: "domain_example.com", markings: []string{tlpClear}, entity: value(TypeDomainName, []string{tlpClear}, nil)},
		{fixture: "domain_loremipsum-services.net", markings: []string{tlpAmber}, entity: value(TypeHostname, []string{tlpAmber}, nil)},
		{fixture: "url_malicious_7d83e9f6", markings: []string{tlpAmber}, entity: value(TypeURL, []string{tlpAmber}, nil),
			edit: func(in *Input) { in.ServingIP = "104.21.8.1" }},
	}
}

// TestBuildEnrichmentGoldens builds the enrichment of an entity matching
// each VirusTotal report sample and compares it with its golden bundle;
// every object must validate against the STIX 2.1 schemas, every id must be
// the deterministic one and every created object must carry the entity's
// markings.
func TestBuildEnrichmentGoldens(t *testing.T) {
	dir := enrShared(t, "testdata/vt")
	cases := enrFixtureCases()
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.fixture+".json"] = true
	}
	// Every report sample has a case (the resolutions and error bodies are
	// not object reports).
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		isReport := strings.HasPrefix(n, "file_") || strings.HasPrefix(n, "ip_") || strings.HasPrefix(n, "domain_") || strings.HasPrefix(n, "url_")
		if isReport && !strings.Contains(n, "_resolutions_") && !covered[n] {
			t.Errorf("VirusTotal sample %s has no golden case", n)
		}
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			report := loadVTObject(t, c.fixture+".json")
			rulesets := map[string]*vt.Object{}
			for _, rs := range c.rulesets {
				o := loadVTObject(t, rs+".json")
				rulesets[o.ID] = o
			}
			e := c.entity(t, report)
			in := enrInput(e, report, rulesets)
			if c.edit != nil {
				c.edit(&in)
			}
			out, err := Build(in)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			checkGolden(t, "build_"+c.fixture, out)
			validateObjects(t, out)
			objs := decodeObjects(t, out)
			checkIDs(t, objs)
			checkMarkings(t, objs, c.markings)
			if objs[0]["id"] != e.ID {
				t.Errorf("first object is %v, want the enriched entity %s", objs[0]["id"], e.ID)
			}
			if objs[1]["id"] != "identity--173c879a-bfb3-5dee-9f1f-3fffd76a8756" {
				t.Errorf("second object is %v, want the VirusTotal identity", objs[1]["id"])
			}
		})
	}
}

func TestEnrichVTIdentity(t *testing.T) {
	id := VTIdentity(enrNow)
	if want := stix.IdentityID("VirusTotal", "organization"); id.ID != want || want != "identity--173c879a-bfb3-5dee-9f1f-3fffd76a8756" {
		t.Errorf("VTIdentity id = %s, IdentityID = %s, want identity--173c879a-bfb3-5dee-9f1f-3fffd76a8756", id.ID, want)
	}
	if id.Name != "VirusTotal" || id.Description != "VirusTotal" || id.IdentityClass != "organization" || len(id.ObjectMarkingRefs) != 0 {
		t.Errorf("VTIdentity = %+v", id)
	}
}

func TestScoreGoldenFileMalicious4bc00f7dIs72(t *testing.T) {
	report := loadVTObject(t, "file_malicious_4bc00f7d.json")
	out, err := Build(enrInput(hybridFileEntity(t, report.Attributes.SHA256), report, nil))
	if err != nil {
		t.Fatal(err)
	}
	if out.Score != 72 || out.ScoreKept {
		t.Errorf("Score = %d (kept %v), want 72", out.Score, out.ScoreKept)
	}
	ent := decodeObjects(t, out)[0]
	ext := ent["extensions"].(map[string]any)[stix.ExtensionOpenCTISCO].(map[string]any)
	if ext["score"] != json.Number("72") {
		t.Errorf("SCO extension score = %v, want 72", ext["score"])
	}
}

func TestBuildLowerScoreKeptAddsScoreNoteWithStableID(t *testing.T) {
	report := loadVTObject(t, "file_malicious_4bc00f7d.json")
	e := fileEntity(t, TypeStixFile, report.Attributes.SHA256, []string{tlpAmber}, map[string]any{"x_opencti_score": 90})
	for _, replace := range []bool{false, true} {
		t.Run(fmt.Sprintf("replace_with_lower_score=%v", replace), func(t *testing.T) {
			in := enrInput(e, report, nil)
			in.Opts.ReplaceWithLowerScore = replace
			out, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			objs := decodeObjects(t, out)
			ext := objs[0]["extensions"].(map[string]any)[stix.ExtensionOpenCTISCO].(map[string]any)
			if _, ok := objs[0]["x_opencti_score"]; ok {
				t.Error("top-level x_opencti_score was not removed")
			}
			var scoreNotes []map[string]any
			for _, n := range byType(objs, "note") {
				if n["abstract"] == "VirusTotal Score" {
					scoreNotes = append(scoreNotes, n)
				}
			}
			if !replace {
				if !out.ScoreKept || ext["score"] != json.Number("90") || out.Score != 72 {
					t.Errorf("kept = %v, extension score = %v, Score = %d; want the existing 90 kept and 72 reported", out.ScoreKept, ext["score"], out.Score)
				}
				if len(scoreNotes) != 1 {
					t.Fatalf("%d score notes, want 1", len(scoreNotes))
				}
				n := scoreNotes[0]
				if want := stix.NoteID("vtconnector:virustotal-score:"+e.ID, time.Time{}); n["id"] != want {
					t.Errorf("score note id = %v, want %s", n["id"], want)
				}
				if n["content"] != "```\n72\n```" {
					t.Errorf("score note content = %q", n["content"])
				}
				// The indicator carries the effective (kept) score.
				if ind := byType(objs, "indicator")[0]; ind["x_opencti_score"] != json.Number("90") {
					t.Errorf("indicator score = %v, want 90", ind["x_opencti_score"])
				}
				// The score note comes first among the new objects.
				if objs[2]["type"] != "note" || objs[2]["abstract"] != "VirusTotal Score" {
					t.Errorf("object 2 is %v %v, want the score note", objs[2]["type"], objs[2]["abstract"])
				}
			} else {
				if out.ScoreKept || ext["score"] != json.Number("72") || len(scoreNotes) != 0 {
					t.Errorf("kept = %v, extension score = %v, %d score notes; want 72 written and no note", out.ScoreKept, ext["score"], len(scoreNotes))
				}
			}
			validateObjects(t, out)
		})
	}
}

func TestBuildZeroDenominatorKeepsScoreAndWarns(t *testing.T) {
	report := withAttributes(t, loadVTObject(t, "ip_138.128.150.133.json"), func(a map[string]any) {
		a["last_analysis_stats"] = map[string]any{"harmless": 0, "malicious": 0, "suspicious": 2, "undetected": 0, "timeout": 5}
	})
	e := valueObservable(t, TypeIPv4Addr, "138.128.150.133", []string{tlpGreen}, map[string]any{"x_opencti_score": 35})
	out, err := Build(enrInput(e, report, nil))
	if err != nil {
		t.Fatalf("Build failed on a zero denominator: %v", err)
	}
	if out.Score != 0 || out.ScoreKept || len(out.Warnings) == 0 || !strings.Contains(out.Warnings[0], "score is left unchanged") {
		t.Errorf("Score = %d, kept = %v, warnings = %q", out.Score, out.ScoreKept, out.Warnings)
	}
	ent := decodeObjects(t, out)[0]
	if ent["x_opencti_score"] != json.Number("35") {
		t.Errorf("x_opencti_score = %v, want the untouched 35", ent["x_opencti_score"])
	}
	if ext, _ := ent["extensions"].(map[string]any)[stix.ExtensionOpenCTISCO].(map[string]any); ext["score"] != nil {
		t.Errorf("extension score = %v, want none", ext["score"])
	}
	validateObjects(t, out)
}

func TestBuildIndicatorThresholds(t *testing.T) {
	report := loadVTObject(t, "file_malicious_4bc00f7d.json") // 47 malicious
	e := fileEntity(t, TypeStixFile, report.Attributes.SHA256, []string{tlpAmber}, nil)
	tests := []struct {
		threshold int
		want      bool
	}{{0, false}, {-3, false}, {1, true}, {47, true}, {48, false}}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.threshold), func(t *testing.T) {
			in := enrInput(e, report, nil)
			in.Opts.FileImportYARA = false
			in.Opts.FileIndicator.CreatePositives = tt.threshold
			out, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			got := len(byType(decodeObjects(t, out), "indicator")) == 1
			if got != tt.want {
				t.Errorf("threshold %d: indicator created = %v, want %v", tt.threshold, got, tt.want)
			}
		})
	}
}

func TestBuildIndicatorValidUntilIsNowPlusMinutes(t *testing.T) {
	report := loadVTObject(t, "url_malicious_7d83e9f6.json")
	e := valueObservable(t, TypeURL, report.Attributes.URL, []string{tlpAmber}, nil)
	for _, minutes := range []int{1, 90, 2880} {
		in := enrInput(e, report, nil)
		in.Opts.URLIndicator.ValidMinutes = minutes
		out, err := Build(in)
		if err != nil {
			t.Fatal(err)
		}
		ind := byType(decodeObjects(t, out), "indicator")[0]
		want := stix.FormatTimestamp(enrNow.Add(time.Duration(minutes) * time.Minute))
		if ind["valid_until"] != want || ind["valid_from"] != stix.FormatTimestamp(enrNow) {
			t.Errorf("%d minutes: valid_from %v, valid_until %v; want %s, %s", minutes, ind["valid_from"], ind["valid_until"], stix.FormatTimestamp(enrNow), want)
		}
	}
	in := enrInput(e, report, nil)
	in.Opts.URLIndicator.ValidMinutes = 0
	out, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if ind := byType(decodeObjects(t, out), "indicator")[0]; ind["valid_until"] != nil {
		t.Errorf("0 minutes: valid_until = %v, want none", ind["valid_until"])
	}
	validateObjects(t, out)
}

func TestBuildHostileURLGivesValidEscapedPattern(t *testing.T) {
	const hostile = `http://evil.example/a'b\c?q=x' OR '1'='1`
	report := withAttributes(t, loadVTObject(t, "url_malicious_7d83e9f6.json"), func(a map[string]any) { a["url"] = hostile })
	e := valueObservable(t, TypeURL, hostile, []string{tlpAmber}, nil)
	out, err := Build(enrInput(e, report, nil))
	if err != nil {
		t.Fatal(err)
	}
	validateObjects(t, out)
	objs := decodeObjects(t, out)
	checkIDs(t, objs)
	ind := byType(objs, "indicator")[0]
	pattern := ind["pattern"].(string)
	if want := `[url:value = 'http://evil.example/a\'b\\c?q=x\' OR \'1\'=\'1']`; pattern != want {
		t.Errorf("pattern = %s, want %s", pattern, want)
	}
	comps, err := patternComparisons(pattern)
	if err != nil || len(comps) != 1 || comps[0].value != hostile {
		t.Errorf("pattern does not read back as one comparison on the URL: %+v, %v", comps, err)
	}
	// The hostile value in the note abstract and table stays inert.
	note := byType(objs, "note")[0]
	if !strings.Contains(note["abstract"].(string), hostile) {
		t.Errorf("abstract %q does not name the URL", note["abstract"])
	}
}

func TestBuildHostileDomainPattern(t *testing.T) {
	// A hostile Hostname cannot reach VirusTotal: LookupFor refuses it.
	e := Entity{ID: stix.HostnameID(`a'b.example`), Type: TypeHostname, STIX: map[string]any{"type": "hostname", "id": stix.HostnameID(`a'b.example`), "value": `a'b.example`}}
	if _, err := LookupFor(e); err == nil {
		t.Error("LookupFor accepted a hostname with a quote")
	}
	if got, want := stix.DomainNamePattern(`a'b\.example`), `[domain-name:value = 'a\'b\\.example']`; got != want {
		t.Errorf("DomainNamePattern = %s, want %s", got, want)
	}
}

func TestBuildNoteIDStableAcrossReports(t *testing.T) {
	first := loadVTObject(t, "ip_138.128.150.133.json")
	second := withAttributes(t, first, func(a map[string]any) {
		a["last_analysis_stats"] = map[string]any{"harmless": 60, "malicious": 30, "suspicious": 1, "undetected": 3}
		a["as_owner"] = "SOMEONE ELSE"
	})
	e := valueObservable(t, TypeIPv4Addr, "138.128.150.133", []string{tlpGreen}, nil)
	var notes []map[string]any
	for i, r := range []*vt.Object{first, second} {
		in := enrInput(e, r, nil)
		in.Now = enrNow.Add(time.Duration(i) * 24 * time.Hour)
		out, err := Build(in)
		if err != nil {
			t.Fatal(err)
		}
		ns := byType(decodeObjects(t, out), "note")
		if len(ns) != 1 {
			t.Fatalf("build %d: %d notes, want 1 (results and categories in one note)", i, len(ns))
		}
		notes = append(notes, ns[0])
	}
	if notes[0]["id"] != notes[1]["id"] {
		t.Errorf("note ids differ across builds: %v, %v", notes[0]["id"], notes[1]["id"])
	}
	if notes[0]["content"] == notes[1]["content"] {
		t.Error("the two reports gave the same content; the test proves nothing")
	}
	if want := stix.NoteID("vtconnector:virustotal-results:"+e.ID, time.Time{}); notes[0]["id"] != want {
		t.Errorf("note id = %v, want %s", notes[0]["id"], want)
	}
}

func TestBuildReEnrichmentAddsNoDuplicates(t *testing.T) {
	report := loadVTObject(t, "file_malicious_6b60666d_win32exe_yara.json")
	e := fileEntity(t, TypeStixFile, report.Attributes.SHA256, []string{tlpAmber}, nil)
	out, err := Build(enrInput(e, report, nil))
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseEntity(e.ID, e.Type, out.Objects[0])
	if err != nil {
		t.Fatalf("the updated entity does not parse back: %v", err)
	}
	out2, err := Build(enrInput(again, report, nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(out.Objects[0]), string(out2.Objects[0])); diff != "" {
		t.Errorf("re-enrichment changed the entity (-first +second):\n%s", diff)
	}
	ext := decodeObjects(t, out2)[0]["extensions"].(map[string]any)[stix.ExtensionOpenCTISCO].(map[string]any)
	if n := len(ext["external_references"].([]any)); n != 1 {
		t.Errorf("%d external references, want 1", n)
	}
	if got := len(ext["labels"].([]any)); got != len(report.Attributes.Tags) {
		t.Errorf("%d labels, want %d", got, len(report.Attributes.Tags))
	}
}

func TestBuildExternalReferenceFromTypeAndID(t *testing.T) {
	// links.self mentions "files" in a domain name: the original's string
	// replacement broke the link (§10.11).
	report := vtObjectFromJSON(t, `{"type":"domain","id":"dropfiles.net","links":{"self":"https://www.virustotal.com/api/v3/domains/dropfiles.net"},
		"attributes":{"last_analysis_stats":{"harmless":1,"malicious":0,"undetected":0}}}`)
	e := valueObservable(t, TypeDomainName, "dropfiles.net", nil, nil)
	out, err := Build(enrInput(e, report, nil))
	if err != nil {
		t.Fatal(err)
	}
	ext := decodeObjects(t, out)[0]["extensions"].(map[string]any)[stix.ExtensionOpenCTISCO].(map[string]any)
	ref := ext["external_references"].([]any)[0].(map[string]any)
	want := map[string]any{"source_name": "VirusTotal", "url": "https://www.virustotal.com/gui/domain/dropfiles.net", "description": "VirusTotal Report"}
	if diff := cmp.Diff(want, ref); diff != "" {
		t.Errorf("external reference (-want +got):\n%s", diff)
	}
}

func TestBuildDomainResolutionsSkipInvalidARecords(t *testing.T) {
	report := withAttributes(t, loadVTObject(t, "domain_example.com.json"), func(a map[string]any) {
		a["last_dns_records"] = []any{
			map[string]any{"type": "A", "value": "999.1.1.1"},
			map[string]any{"type": "A", "value": "93.184.216.34"},
			map[string]any{"type": "A", "value": "93.184.216.34"},
			map[string]any{"type": "AAAA", "value": "2606:2800:220:1:248:1893:25c8:1946"},
			map[string]any{"type": "A", "value": "::1"},
			map[string]any{"type": "A"},
			"garbage",
		}
	})
	e := valueObservable(t, TypeDomainName, "example.com", []string{tlpGreen}, nil)
	out, err := Build(enrInput(e, report, nil))
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeObjects(t, out)
	ips := byType(objs, "ipv4-addr")
	if len(ips) != 1 || ips[0]["value"] != "93.184.216.34" {
		t.Errorf("IPv4 objects = %v, want only 93.184.216.34", ips)
	}
	if n := len(out.Warnings); n != 3 {
		t.Errorf("warnings = %q, want 3 (two invalid A records and one without value)", out.Warnings)
	}
	rels := byType(objs, "relationship")
	if len(rels) != 1 || rels[0]["relationship_type"] != "resolves-to" || rels[0]["source_ref"] != e.ID {
		t.Errorf("relationships = %v", rels)
	}
	validateObjects(t, out)
	checkMarkings(t, objs, []string{tlpGreen})
}

func TestBuildMissingVTFieldsDoNotCrash(t *testing.T) {
	cases := []struct {
		entity Entity
		report string
	}{
		{fileEntity(t, TypeStixFile, strings.Repeat("a", 64), []string{tlpAmber}, nil), `{"type":"file","id":"` + strings.Repeat("a", 64) + `","attributes":{}}`},
		{fileEntity(t, TypeArtifact, strings.Repeat("b", 64), nil, nil), `{"type":"file","id":"` + strings.Repeat("b", 64) + `"}`},
		{fileEntity(t, TypeStixFile, strings.Repeat("c", 64), nil, nil), `{"type":"file","id":"` + strings.Repeat("c", 64) + `","attributes":{"tags":null,"names":null,"md5":null,"size":null,"last_analysis_stats":null,"last_analysis_results":null,"crowdsourced_yara_results":[{"rule_name":"x"}]}}`},
		{valueObservable(t, TypeIPv4Addr, "10.0.0.1", nil, nil), `{"type":"ip_address","id":"10.0.0.1","attributes":{"last_analysis_stats":{"malicious":1}}}`},
		{valueObservable(t, TypeDomainName, "a.example", nil, nil), `{"type":"domain","id":"a.example","attributes":{"last_dns_records":"nope","categories":[1,2]}}`},
		{valueObservable(t, TypeHostname, "b.example", nil, nil), `{"type":"domain","id":"b.example","attributes":{"last_analysis_results":{"E":null}}}`},
		{valueObservable(t, TypeURL, "http://u.example/", nil, nil), `{"type":"url","id":"abc","attributes":{"last_analysis_stats":{}}}`},
	}
	for _, c := range cases {
		t.Run(c.entity.Type+" "+c.entity.Value(), func(t *testing.T) {
			out, err := Build(enrInput(c.entity, vtObjectFromJSON(t, c.report), nil))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			validateObjects(t, out)
			checkIDs(t, decodeObjects(t, out))
		})
	}
}

func TestBuildRefusesMismatchedReportsAndEmptyInput(t *testing.T) {
	ip := valueObservable(t, TypeIPv4Addr, "10.0.0.1", nil, nil)
	fileReport := vtObjectFromJSON(t, `{"type":"file","id":"`+strings.Repeat("a", 64)+`"}`)
	tests := []struct {
		name string
		in   Input
	}{
		{"report of another kind", Input{Entity: ip, Report: fileReport, Author: VTIdentity(enrNow), Now: enrNow}},
		{"no report", Input{Entity: ip, Author: VTIdentity(enrNow), Now: enrNow}},
		{"no clock", Input{Entity: ip, Report: fileReport, Author: VTIdentity(enrNow)}},
		{"no author", Input{Entity: ip, Report: fileReport, Now: enrNow}},
		{"no entity", Input{Report: fileReport, Author: VTIdentity(enrNow), Now: enrNow}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Build(tt.in); err == nil {
				t.Error("Build succeeded")
			}
		})
	}
}

// TestBuildIndicatorModeWithTwoObservables enriches an Indicator whose
// pattern names an IPv4 address and a domain: one Build per observable, the
// Indicator updated, no new Indicator, and the observable's objects
// attached to the observable, which is emitted with based-on from the
// Indicator.
func TestBuildIndicatorModeWithTwoObservables(t *testing.T) {
	const pattern = `[ipv4-addr:value = '138.128.150.133'] OR [domain-name:value = 'example.com']`
	indicatorID := stix.IndicatorID(pattern)
	indicator := mustEntity(t, TypeIndicator, map[string]any{
		"type": "indicator", "spec_version": "2.1", "id": indicatorID,
		"created": "2026-01-02T03:04:05.000Z", "modified": "2026-01-02T03:04:05.000Z",
		"name": "C2 infrastructure", "pattern": pattern, "pattern_type": "stix", "valid_from": "2026-01-02T03:04:05.000Z",
		"x_opencti_score": 50, "labels": []any{"c2"},
		"object_marking_refs": []any{tlpAmber},
		"extensions":          map[string]any{stix.ExtensionOpenCTISDO: map[string]any{"extension_type": "property-extension", "main_observable_type": "IPv4-Addr"}},
	})
	observables, err := IndicatorObservables(indicator)
	if err != nil {
		t.Fatal(err)
	}
	if len(observables) != 2 || observables[0].Type != TypeIPv4Addr || observables[1].Type != TypeDomainName {
		t.Fatalf("observables = %+v", observables)
	}
	reports := map[string]*vt.Object{
		TypeIPv4Addr:   loadVTObject(t, "ip_138.128.150.133.json"),
		TypeDomainName: loadVTObject(t, "domain_example.com.json"),
	}
	current := indicator
	for _, obs := range observables {
		lk, err := LookupFor(obs)
		if err != nil {
			t.Fatal(err)
		}
		in := enrInput(obs, reports[obs.Type], nil)
		in.Opts.ReplaceWithLowerScore = true
		in.Indicator = &current
		out, err := Build(in)
		if err != nil {
			t.Fatalf("%s %s: %v", obs.Type, lk.ID, err)
		}
		checkGolden(t, "build_indicator_mode_"+strings.ToLower(obs.Type), out)
		validateObjects(t, out)
		objs := decodeObjects(t, out)
		checkIDs(t, objs)
		checkMarkings(t, objs, []string{tlpAmber})
		upd := objs[0]
		if upd["id"] != indicatorID || upd["type"] != "indicator" {
			t.Fatalf("first object = %v, want the Indicator", upd["id"])
		}
		if _, ok := upd["x_opencti_score"]; ok {
			t.Error("top-level x_opencti_score kept on the Indicator")
		}
		sdo := upd["extensions"].(map[string]any)[stix.ExtensionOpenCTISDO].(map[string]any)
		if sdo["score"] != json.Number(fmt.Sprint(out.Score)) || sdo["main_observable_type"] != "IPv4-Addr" {
			t.Errorf("SDO extension = %v, want score %d and the other fields kept", sdo, out.Score)
		}
		if len(asList(upd["external_references"])) == 0 {
			t.Error("no external reference on the Indicator")
		}
		if n := len(byType(objs, "indicator")); n != 1 {
			t.Errorf("%d indicators, want only the enriched one", n)
		}
		if objs[2]["id"] != obs.ID {
			t.Errorf("object 2 = %v, want the observable %s", objs[2]["id"], obs.ID)
		}
		for _, r := range byType(objs, "relationship") {
			switch r["relationship_type"] {
			case "based-on":
				if r["source_ref"] != indicatorID || r["target_ref"] != obs.ID {
					t.Errorf("based-on %v → %v", r["source_ref"], r["target_ref"])
				}
			default:
				if r["source_ref"] != obs.ID {
					t.Errorf("%v relationship from %v, want from the observable", r["relationship_type"], r["source_ref"])
				}
			}
		}
		for _, n := range byType(objs, "note") {
			refs := asList(n["object_refs"])
			if len(refs) != 2 || refs[0] != indicatorID || refs[1] != obs.ID {
				t.Errorf("note refs = %v", refs)
			}
		}
		next, err := ParseEntity(indicatorID, TypeIndicator, out.Objects[0])
		if err != nil {
			t.Fatalf("updated Indicator does not parse back: %v", err)
		}
		current = next
	}
	refs := asList(current.STIX["external_references"])
	if len(refs) != 2 {
		t.Errorf("after both observables the Indicator has %d references, want 2", len(refs))
	}
}

func TestIndicatorObservablesParsesPatterns(t *testing.T) {
	sha256 := strings.Repeat("ab", 32)
	md5 := strings.Repeat("cd", 16)
	sha1 := strings.Repeat("ef", 20)
	tests := []struct {
		name    string
		pattern string
		want    []string // "<type> <value or hashes>"
	}{
		{"file SHA-256", `[file:hashes.'SHA-256' = '` + sha256 + `']`, []string{"StixFile SHA-256=" + sha256}},
		{"file hashes in one observation merge", `[file:hashes.MD5 = '` + md5 + `' AND file:hashes.'SHA-1' = '` + sha1 + `']`, []string{"StixFile MD5=" + md5 + ",SHA-1=" + sha1}},
		{"file hashes with OR stay apart", `[file:hashes.MD5 = '` + md5 + `' OR file:hashes.'SHA-1' = '` + sha1 + `']`, []string{"StixFile MD5=" + md5, "StixFile SHA-1=" + sha1}},
		{"artifact", `[artifact:hashes.'SHA-256' = '` + sha256 + `']`, []string{"Artifact SHA-256=" + sha256}},
		{"two observations", `[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [url:value = 'http://x.example/']`, []string{"IPv4-Addr 1.2.3.4", "Url http://x.example/"}},
		{"escapes", `[url:value = 'http://x.example/it\'s\\here']`, []string{`Url http://x.example/it's\here`}},
		{"hostname and domain", `([hostname:value = 'h.example'] AND [domain-name:value = 'd.example']) WITHIN 300 SECONDS`, []string{"Hostname h.example", "Domain-Name d.example"}},
		{"duplicates once", `[domain-name:value = 'd.example'] OR [domain-name:value = 'd.example']`, []string{"Domain-Name d.example"}},
		{"unsupported comparisons skipped", `[ipv4-addr:value != '9.9.9.9' AND ipv4-addr:value NOT = '8.8.8.8' AND email-addr:value = 'a@b.c' AND ipv4-addr:value = '5.6.7.8' AND network-traffic:dst_port = 443]`, []string{"IPv4-Addr 5.6.7.8"}},
		{"lower-case hash name", `[file:hashes.'sha256' = '` + sha256 + `']`, []string{"StixFile SHA-256=" + sha256}},
		{"qualifiers and timestamps", `[url:value = 'http://q.example/'] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'`, []string{"Url http://q.example/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ind := indicatorEntity(t, tt.pattern)
			obs, err := IndicatorObservables(ind)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range obs {
				desc := o.Type + " "
				if o.Type == TypeStixFile || o.Type == TypeArtifact {
					var parts []string
					for algo, v := range o.Hashes() {
						parts = append(parts, algo+"="+v)
					}
					slices.Sort(parts)
					desc += strings.Join(parts, ",")
				} else {
					desc += o.Value()
				}
				got = append(got, desc)
				if !slices.Equal(o.Markings(), []string{tlpRed()}) {
					t.Errorf("%s markings = %v, want the Indicator's", o.ID, o.Markings())
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("observables (-want +got):\n%s", diff)
			}
			checkIDs(t, append([]map[string]any{{}}, entitiesSTIX(obs)...))
		})
	}
}

func tlpRed() string { return stix.TLPRed.MarkingID() }

func entitiesSTIX(es []Entity) []map[string]any {
	out := make([]map[string]any, len(es))
	for i, e := range es {
		// Round-trip so numbers and lists have their decoded types.
		data, _ := json.Marshal(e.STIX)
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		_ = dec.Decode(&out[i])
	}
	return out
}

func indicatorEntity(t *testing.T, pattern string) Entity {
	t.Helper()
	return mustEntity(t, TypeIndicator, map[string]any{
		"type": "indicator", "spec_version": "2.1", "id": stix.IndicatorID(pattern),
		"created": "2026-01-02T03:04:05.000Z", "modified": "2026-01-02T03:04:05.000Z", "valid_from": "2026-01-02T03:04:05.000Z",
		"pattern": pattern, "pattern_type": "stix", "object_marking_refs": []any{tlpRed()},
	})
}

func TestIndicatorObservablesErrors(t *testing.T) {
	tests := []struct {
		name, pattern, patternType, want string
	}{
		{"no supported observable", `[email-addr:value = 'a@b.c']`, "stix", "names no supported observable (found: email-addr"},
		{"only negated comparisons", `[ipv4-addr:value != '1.2.3.4']`, "stix", "names no supported observable"},
		{"YARA indicator", `rule x { condition: true }`, "yara", `pattern_type is "yara"`},
		{"unterminated string", `[url:value = 'http://x]`, "stix", "unterminated string literal"},
		{"bad escape", `[url:value = 'a\nb']`, "stix", "invalid escape"},
		{"unbalanced", `[url:value = 'a'`, "stix", "unbalanced ["},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ind := mustEntity(t, TypeIndicator, map[string]any{"type": "indicator", "id": stix.IndicatorID(tt.pattern), "pattern": tt.pattern, "pattern_type": tt.patternType})
			_, err := IndicatorObservables(ind)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := IndicatorObservables(valueObservable(t, TypeURL, "http://x/", nil, nil)); err == nil {
		t.Error("IndicatorObservables accepted an observable")
	}
}

func TestPatternYARARuleExtraction(t *testing.T) {
	const ruleset = `import "pe"
import "math"

/* a comment with rule fake { } */
private rule helper : tag1 tag2 {
    strings:
        $a = "}" // brace in a string
        $re = /ab{2,3}\}/ nocase
    condition:
        $a or $re
}

global rule uses_pe
{
    meta:
        description = "rule with { braces } in meta"
    strings:
        $h = { 4D 5A [2-4] ( 90 | 00 ) }
    condition:
        pe.is_pe and filesize / 2 > 10 and helper
}

rule last { condition: true }`
	tests := []struct {
		name, rule, want string
		ok               bool
	}{
		{"private rule with tags and tricky strings", "helper", `private rule helper : tag1 tag2 {
    strings:
        $a = "}" // brace in a string
        $re = /ab{2,3}\}/ nocase
    condition:
        $a or $re
}`, true},
		{"module import added", "uses_pe", `import "pe"

global rule uses_pe
{
    meta:
        description = "rule with { braces } in meta"
    strings:
        $h = { 4D 5A [2-4] ( 90 | 00 ) }
    condition:
        pe.is_pe and filesize / 2 > 10 and helper
}`, true},
		{"last rule", "last", "rule last { condition: true }", true},
		{"rule named in a comment only", "fake", "", false},
		{"missing rule", "nope", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := extractYARARule(ruleset, tt.rule)
			if ok != tt.ok || got != tt.want {
				t.Errorf("extractYARARule(%q) = %q, %v; want %q, %v", tt.rule, got, ok, tt.want, tt.ok)
			}
		})
	}
	if _, ok := extractYARARule("rule broken { condition: true", "broken"); ok {
		t.Error("accepted a rule without its closing brace")
	}
	// A declaration-looking regexp inside another rule is not a rule.
	const tricky = "rule a { strings: $r = /rule b \\{/ condition: $r and \"rule b {\" }\nrule b { condition: true }"
	if got, ok := extractYARARule(tricky, "b"); !ok || got != "rule b { condition: true }" {
		t.Errorf("extractYARARule(tricky, b) = %q, %v", got, ok)
	}
}

func TestPatternYARAFromSharedRuleset(t *testing.T) {
	rs := loadVTObject(t, "yara_ruleset_00888403c4.json")
	got, ok := extractYARARule(rs.Attributes.Rules, "win_kerrdown_auto")
	if !ok {
		t.Fatal("rule not found")
	}
	if strings.TrimSpace(got) != strings.TrimSpace(rs.Attributes.Rules) {
		t.Errorf("the ruleset holds this one rule only; extraction changed it:\n%s", got)
	}
}

func TestBuildYARAIndicators(t *testing.T) {
	report := loadVTObject(t, "file_malicious_4bc00f7d.json")
	rs := loadVTObject(t, "yara_ruleset_00888403c4.json")
	e := fileEntity(t, TypeStixFile, report.Attributes.SHA256, []string{tlpAmber}, nil)
	in := enrInput(e, report, map[string]*vt.Object{rs.ID: rs})
	out, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeObjects(t, out)
	var yara map[string]any
	for _, ind := range byType(objs, "indicator") {
		if ind["pattern_type"] == "yara" {
			yara = ind
		}
	}
	if yara == nil {
		t.Fatal("no YARA indicator")
	}
	if yara["x_opencti_detection"] != true || yara["valid_from"] != stix.FormatTimestamp(enrNow) || yara["name"] != "win_kerrdown_auto" {
		t.Errorf("YARA indicator = %v", yara)
	}
	if !strings.Contains(yara["description"].(string), `"ruleset_id": "00888403c4"`) {
		t.Errorf("description lacks the ruleset id:\n%s", yara["description"])
	}
	var related bool
	for _, r := range byType(objs, "relationship") {
		if r["relationship_type"] == "related-to" && r["source_ref"] == e.ID && r["target_ref"] == yara["id"] {
			related = true
		}
	}
	if !related {
		t.Error("no related-to from the file to the YARA indicator")
	}
	// Without the ruleset: skipped with a warning.
	in.Rulesets = nil
	out, err = Build(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, ind := range byType(decodeObjects(t, out), "indicator") {
		if ind["pattern_type"] == "yara" {
			t.Error("YARA indicator built without its ruleset")
		}
	}
	if len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0], "00888403c4") {
		t.Errorf("warnings = %q", out.Warnings)
	}
}

func TestEnrichYARADescriptionIsASCIIJSON(t *testing.T) {
	got := yaraDescription(vt.YARAResult{RuleName: "r", RulesetID: "id1", RulesetName: "set", Author: "Zoë <z@x>", Description: "emoji 😀 & quote \""})
	want := "```\n{\n  \"description\": \"emoji \\ud83d\\ude00 & quote \\\"\",\n  \"author\": \"Zo\\u00eb <z@x>\",\n  \"source\": \"No source provided\",\n  \"ruleset_id\": \"id1\",\n  \"ruleset_name\": \"set\"\n}\n```"
	if got != want {
		t.Errorf("yaraDescription =\n%s\nwant\n%s", got, want)
	}
}

func TestParseEntityErrors(t *testing.T) {
	ipID := stix.IPv4AddrID("1.2.3.4")
	tests := []struct {
		name, id, typ, stix, want string
	}{
		{"unsupported type", ipID, "IPv6-Addr", `{}`, "IPv6-Addr is not a supported entity type."},
		{"empty entity id", "", TypeIPv4Addr, `{}`, "entity_id is empty"},
		{"entity id not a STIX id", "1.2.3.4", TypeIPv4Addr, `{}`, "is not a STIX id"},
		{"empty stix_entity", ipID, TypeIPv4Addr, ``, "stix_entity is empty"},
		{"null stix_entity", ipID, TypeIPv4Addr, `null`, "stix_entity is empty"},
		{"not JSON", ipID, TypeIPv4Addr, `{"type":`, "stix_entity"},
		{"a list", ipID, TypeIPv4Addr, `[1]`, "not a JSON object"},
		{"trailing data", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4"} {}`, "data after the JSON object"},
		{"wrong type", ipID, TypeIPv4Addr, `{"type":"file","id":"` + ipID + `","value":"1.2.3.4"}`, `stix_entity.type: "file", want "ipv4-addr"`},
		{"id mismatch", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"ipv4-addr--00000000-0000-4000-8000-000000000000","value":"1.2.3.4"}`, "stix_entity.id"},
		{"missing value", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `"}`, "stix_entity.value: missing"},
		{"value not a string", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":42}`, "stix_entity.value: want a string, got a number"},
		{"bad marking", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","object_marking_refs":["TLP:RED"]}`, "object_marking_refs[0]"},
		{"score out of range", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","x_opencti_score":101}`, "x_opencti_score"},
		{"score a string", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","x_opencti_score":"90"}`, "x_opencti_score: want a number"},
		{"extension score", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","extensions":{"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82":{"score":true}}}`, `extensions["extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82"].score`},
		{"extension labels", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","extensions":{"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82":{"labels":"x"}}}`, "labels: want a list"},
		{"hashes not strings", stix.URLID("x"), TypeStixFile, `{"type":"file","id":"` + stix.URLID("x") + `","hashes":{"MD5":5}}`, `hashes["MD5"]: want a string`},
		{"indicator without pattern", stix.IndicatorID("x"), TypeIndicator, `{"type":"indicator","id":"` + stix.IndicatorID("x") + `"}`, "stix_entity.pattern: missing"},
		{"external references not objects", ipID, TypeIPv4Addr, `{"type":"ipv4-addr","id":"` + ipID + `","value":"1.2.3.4","external_references":["x"]}`, "external_references[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEntity(tt.id, tt.typ, []byte(tt.stix))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	var ute *UnsupportedTypeError
	if _, err := ParseEntity(ipID, "Malware", []byte(`{}`)); !errors.As(err, &ute) || ute.Type != "Malware" {
		t.Errorf("err = %v, want an UnsupportedTypeError", err)
	}
}

func TestParseEntityKeepsUnknownFields(t *testing.T) {
	const src = `{"type":"url","spec_version":"2.1","id":"url--33333333-3333-4333-8333-333333333333","value":"https://malicious.example","x_opencti_custom":{"n":12345678901234567890,"f":1.50},"extensions":{"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82":{"extension_type":"property-extension","id":"8c555399","created_at":"2024-01-01T00:00:00.000Z"}}}`
	e, err := ParseEntity("url--33333333-3333-4333-8333-333333333333", TypeURL, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	data, err := marshalObject(e.STIX)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`12345678901234567890`, `1.50`, `"created_at":"2024-01-01T00:00:00.000Z"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("%s lost %s", data, want)
		}
	}
}

func TestEnrichLookupFor(t *testing.T) {
	sha256 := strings.Repeat("AB", 32)
	md5 := strings.Repeat("c", 32)
	tests := []struct {
		name    string
		entity  Entity
		want    Lookup
		wantErr string
	}{
		{"SHA-256 first, lower-cased", Entity{Type: TypeStixFile, STIX: map[string]any{"hashes": map[string]any{"MD5": md5, "SHA-256": sha256}}}, Lookup{vt.KindFile, strings.ToLower(sha256)}, ""},
		{"MD5 when alone", Entity{Type: TypeArtifact, STIX: map[string]any{"hashes": map[string]any{"md5": md5}}}, Lookup{vt.KindFile, md5}, ""},
		{"SHA-1", Entity{Type: TypeStixFile, STIX: map[string]any{"hashes": map[string]any{"SHA-1": strings.Repeat("d", 40), "SHA-512": strings.Repeat("e", 128)}}}, Lookup{vt.KindFile, strings.Repeat("d", 40)}, ""},
		{"SHA-512 only", Entity{Type: TypeStixFile, STIX: map[string]any{"hashes": map[string]any{"SHA-512": strings.Repeat("e", 128)}, "name": "x.exe"}}, Lookup{}, "Unable to enrich the observable: it has no SHA-256, SHA-1, or MD5 hash."},
		{"malformed hash", Entity{Type: TypeStixFile, STIX: map[string]any{"hashes": map[string]any{"SHA-256": "../../etc/passwd"}}}, Lookup{}, "is not a hexadecimal SHA-256"},
		{"IPv4", Entity{Type: TypeIPv4Addr, STIX: map[string]any{"value": " 8.8.8.8 "}}, Lookup{vt.KindIP, "8.8.8.8"}, ""},
		{"IPv4 network", Entity{Type: TypeIPv4Addr, STIX: map[string]any{"value": "10.0.0.0/8"}}, Lookup{}, "not a single IPv4 address"},
		{"IPv6 in an IPv4-Addr", Entity{Type: TypeIPv4Addr, STIX: map[string]any{"value": "::1"}}, Lookup{}, "not a single IPv4 address"},
		{"domain lower-cased", Entity{Type: TypeDomainName, STIX: map[string]any{"value": "Example.COM."}}, Lookup{vt.KindDomain, "example.com"}, ""},
		{"hostname uses the domain endpoint", Entity{Type: TypeHostname, STIX: map[string]any{"value": "www.example.com"}}, Lookup{vt.KindDomain, "www.example.com"}, ""},
		{"domain with a slash", Entity{Type: TypeDomainName, STIX: map[string]any{"value": "a/b.example"}}, Lookup{}, "not allowed"},
		{"URL as is", Entity{Type: TypeURL, STIX: map[string]any{"value": "http://x.example/a?b"}}, Lookup{vt.KindURL, "http://x.example/a?b"}, ""},
		{"empty URL", Entity{Type: TypeURL, STIX: map[string]any{"value": " "}}, Lookup{}, "empty value"},
		{"indicator", Entity{Type: TypeIndicator, STIX: map[string]any{}}, Lookup{}, "IndicatorObservables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LookupFor(tt.entity)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("LookupFor = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := LookupFor(Entity{Type: TypeStixFile, STIX: map[string]any{}}); !errors.Is(err, ErrNoHash) {
		t.Errorf("err = %v, want ErrNoHash", err)
	}
}

func TestEnrichEntityAccessors(t *testing.T) {
	e := Entity{Type: TypeStixFile, STIX: map[string]any{
		"name":                "x.exe",
		"hashes":              map[string]any{"sha256": "aa", "SHA-512": "bb", "md5": "cc"},
		"object_marking_refs": []any{tlpAmber, tlpGreen, tlpAmber},
	}}
	if got := e.Value(); got != "bb" {
		t.Errorf("Value = %q, want the SHA-512 (OpenCTI's observable_value order)", got)
	}
	if diff := cmp.Diff(map[string]string{"SHA-256": "aa", "SHA-512": "bb", "MD5": "cc"}, e.Hashes()); diff != "" {
		t.Errorf("Hashes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{tlpAmber, tlpGreen}, e.Markings()); diff != "" {
		t.Errorf("Markings (-want +got):\n%s", diff)
	}
	if got := (Entity{Type: TypeStixFile, STIX: map[string]any{"name": "n"}}).Value(); got != "n" {
		t.Errorf("Value without hashes = %q, want the name", got)
	}
	ind := Entity{Type: TypeIndicator, STIX: map[string]any{"pattern": "[x:y = 'z']"}}
	if got := ind.Value(); got != "[x:y = 'z']" {
		t.Errorf("Indicator Value = %q", got)
	}
}

func TestEnrichCountryNames(t *testing.T) {
	if n := len(countryNames); n != 250 {
		t.Errorf("%d country codes, want the 249 of ISO 3166-1 plus XK", n)
	}
	for code, name := range countryNames {
		if len(code) != 2 || strings.ToUpper(code) != code || name == "" {
			t.Errorf("bad entry %q: %q", code, name)
		}
	}
	if countryNames["GB"] != "United Kingdom" || countryNames["US"] != "United States" {
		t.Error("GB or US misnamed")
	}
	// The reference's Location example: GB named by its code.
	if got := stix.LocationID("GB", "Country"); got != "location--1c83dea3-77ca-5dcf-bee7-47bf6d77c685" {
		t.Errorf("LocationID(GB) = %s", got)
	}
}

func TestBuildIndicatorModeFileLabelsAndYARA(t *testing.T) {
	report := loadVTObject(t, "file_malicious_4bc00f7d.json")
	rs := loadVTObject(t, "yara_ruleset_00888403c4.json")
	pattern := stix.FileHashPattern(stix.HashSHA256, report.Attributes.SHA256)
	ind := indicatorEntity(t, pattern)
	obs, err := IndicatorObservables(ind)
	if err != nil || len(obs) != 1 {
		t.Fatalf("IndicatorObservables = %v, %v", obs, err)
	}
	in := enrInput(obs[0], report, map[string]*vt.Object{rs.ID: rs})
	in.Indicator = &ind
	out, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	validateObjects(t, out)
	objs := decodeObjects(t, out)
	checkIDs(t, objs)
	checkMarkings(t, objs, []string{tlpRed()})
	upd := objs[0]
	if diff := cmp.Diff([]any{"pedll"}, upd["labels"]); diff != "" {
		t.Errorf("Indicator labels (-want +got):\n%s", diff)
	}
	if _, ok := upd["hashes"]; ok {
		t.Error("hashes written on the Indicator")
	}
	var yara, stixIndicators int
	for _, i := range byType(objs, "indicator") {
		if i["pattern_type"] == "yara" {
			yara++
		} else {
			stixIndicators++
		}
	}
	if yara != 1 || stixIndicators != 1 {
		t.Errorf("%d YARA and %d STIX indicators, want 1 YARA and only the enriched one", yara, stixIndicators)
	}
	for _, r := range byType(objs, "relationship") {
		if r["relationship_type"] == "related-to" && r["source_ref"] != obs[0].ID {
			t.Errorf("related-to from %v, want from the file observable", r["source_ref"])
		}
	}
}
