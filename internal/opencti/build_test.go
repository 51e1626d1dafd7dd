package opencti

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

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

// syntheticFixtureCases are the golden builds of the project's synthetic
// VirusTotal answers (testdata/vt).
func syntheticFixtureCases() []enrFixtureCase {
	return []enrFixtureCase{
		{fixture: "file_malicious_3510b090_dll", markings: []string{tlpAmber}, rulesets: []string{"yara_ruleset_0fa1c2e3d4"},
			entity: func(t *testing.T, r *vt.Object) Entity { return syntheticStixFileEntity(t, r.Attributes.SHA256) }},
		{fixture: "file_clean_5c4e305c_apk", markings: []string{tlpClear}, entity: func(t *testing.T, r *vt.Object) Entity {
			return fileEntity(t, TypeArtifact, r.Attributes.SHA256, []string{tlpClear}, nil)
		}},
		{fixture: "ip_198.51.100.23", markings: []string{tlpGreen}, entity: func(t *testing.T, r *vt.Object) Entity {
			return valueObservable(t, TypeIPv4Addr, r.ID, []string{tlpGreen}, map[string]any{"x_opencti_score": 20})
		}},
		{fixture: "domain_example.net", markings: []string{tlpClear}, entity: func(t *testing.T, r *vt.Object) Entity {
			return valueObservable(t, TypeDomainName, r.ID, []string{tlpClear}, nil)
		}},
		{fixture: "domain_login-portal.example", markings: []string{tlpAmber}, entity: func(t *testing.T, r *vt.Object) Entity {
			return valueObservable(t, TypeHostname, r.ID, []string{tlpAmber}, nil)
		}},
		{fixture: "url_malicious_07e0639e", markings: []string{tlpAmber}, entity: func(t *testing.T, r *vt.Object) Entity {
			return valueObservable(t, TypeURL, r.Attributes.URL, []string{tlpAmber}, nil)
		}, edit: func(in *Input) { in.ServingIP = "203.0.113.9" }},
	}
}

// TestBuildSyntheticGoldens builds the enrichment of an entity matching
// each synthetic VirusTotal answer of testdata/vt and compares it with its
// golden bundle (testdata/build_synthetic_*.golden.json, rewritten with
// -update); every id must be the deterministic one and every created
// object must carry the entity's markings (and, as a fidelity subtest,
// validate against the STIX 2.1 schemas).
func TestBuildSyntheticGoldens(t *testing.T) {
	runEnrichmentGoldens(t, filepath.Join("testdata", "vt"), syntheticVTSet, syntheticFixtureCases())
}

// TestBuildEnrichmentGoldens is a fidelity test: the same golden builds
// over the real VirusTotal recordings of ../shared/testdata/vt.
func TestBuildEnrichmentGoldens(t *testing.T) {
	runEnrichmentGoldens(t, enrShared(t, "testdata/vt"), realVTSet, enrFixtureCases())
}

// runEnrichmentGoldens runs the golden cases of a set whose answers are in
// dir; every report answer of dir must have a case.
func runEnrichmentGoldens(t *testing.T, dir string, set vtSet, cases []enrFixtureCase) {
	t.Helper()
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.fixture+".json"] = true
	}
	// The resolutions and error bodies are not object reports.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		n := e.Name()
		isReport := strings.HasPrefix(n, "file_") || strings.HasPrefix(n, "ip_") || strings.HasPrefix(n, "domain_") || strings.HasPrefix(n, "url_")
		if isReport && !strings.Contains(n, "_resolutions_") && !covered[n] {
			t.Errorf("VirusTotal answer %s has no golden case", n)
		}
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			report := set.load(t, c.fixture+".json")
			rulesets := map[string]*vt.Object{}
			for _, rs := range c.rulesets {
				o := set.load(t, rs+".json")
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
			checkGolden(t, "build_"+set.goldenPrefix+c.fixture, out)
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
	forEachVTSet(t, testBuildIndicatorModeWithTwoObservables)
}

func testBuildIndicatorModeWithTwoObservables(t *testing.T, set vtSet) {
	reports := map[string]*vt.Object{
		TypeIPv4Addr:   set.load(t, set.ip),
		TypeDomainName: set.load(t, set.domain),
	}
	pattern := stix.IPv4Pattern(reports[TypeIPv4Addr].ID) + " OR " + stix.DomainNamePattern(reports[TypeDomainName].ID)
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
		checkGolden(t, "build_"+set.goldenPrefix+"indicator_mode_"+strings.ToLower(obs.Type), out)
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

func TestBuildIndicatorModeFileLabelsAndYARA(t *testing.T) {
	forEachVTSet(t, testBuildIndicatorModeFileLabelsAndYARA)
}

func testBuildIndicatorModeFileLabelsAndYARA(t *testing.T, set vtSet) {
	report := set.load(t, set.maliciousFile)
	rs := set.load(t, set.ruleset)
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
	if diff := cmp.Diff(set.maliciousLabels, upd["labels"]); diff != "" {
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
