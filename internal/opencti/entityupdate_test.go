package opencti

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/stix"
)

// TestScoreOfTheSyntheticMaliciousFileIs73 enriches the StixFile of the
// synthetic malicious DLL: 11 malicious, 4 undetected and 0 harmless
// verdicts give round(11/15*100) = 73, written in the SCO extension.
func TestScoreOfTheSyntheticMaliciousFileIs73(t *testing.T) {
	checkMaliciousFileScore(t, syntheticVTSet)
}

// TestScoreGoldenFileMalicious4bc00f7dIs72 is a fidelity test: the same
// check on the real recording (47/(0+18+47) gives 72).
func TestScoreGoldenFileMalicious4bc00f7dIs72(t *testing.T) {
	checkMaliciousFileScore(t, realVTSet)
}

func checkMaliciousFileScore(t *testing.T, set vtSet) {
	t.Helper()
	report := set.load(t, set.maliciousFile)
	out, err := Build(enrInput(set.stixFileEntity(t, report.Attributes.SHA256), report, nil))
	if err != nil {
		t.Fatal(err)
	}
	if out.Score != set.maliciousScore || out.ScoreKept {
		t.Errorf("Score = %d (kept %v), want %d", out.Score, out.ScoreKept, set.maliciousScore)
	}
	ent := decodeObjects(t, out)[0]
	ext := ent["extensions"].(map[string]any)[stix.ExtensionOpenCTISCO].(map[string]any)
	if want := json.Number(fmt.Sprint(set.maliciousScore)); ext["score"] != want {
		t.Errorf("SCO extension score = %v, want %s", ext["score"], want)
	}
}

func TestBuildLowerScoreKeptAddsScoreNoteWithStableID(t *testing.T) {
	forEachVTSet(t, testBuildLowerScoreKeptAddsScoreNoteWithStableID)
}

func testBuildLowerScoreKeptAddsScoreNoteWithStableID(t *testing.T, set vtSet) {
	report := set.load(t, set.maliciousFile)
	vtScore := json.Number(fmt.Sprint(set.maliciousScore))
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
				if !out.ScoreKept || ext["score"] != json.Number("90") || out.Score != set.maliciousScore {
					t.Errorf("kept = %v, extension score = %v, Score = %d; want the existing 90 kept and %d reported", out.ScoreKept, ext["score"], out.Score, set.maliciousScore)
				}
				if len(scoreNotes) != 1 {
					t.Fatalf("%d score notes, want 1", len(scoreNotes))
				}
				n := scoreNotes[0]
				if want := stix.NoteID("vtconnector:virustotal-score:"+e.ID, time.Time{}); n["id"] != want {
					t.Errorf("score note id = %v, want %s", n["id"], want)
				}
				if n["content"] != "```\n"+string(vtScore)+"\n```" {
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
				if out.ScoreKept || ext["score"] != vtScore || len(scoreNotes) != 0 {
					t.Errorf("kept = %v, extension score = %v, %d score notes; want %s written and no note", out.ScoreKept, ext["score"], len(scoreNotes), vtScore)
				}
			}
			validateObjects(t, out)
		})
	}
}

func TestBuildZeroDenominatorKeepsScoreAndWarns(t *testing.T) {
	forEachVTSet(t, testBuildZeroDenominatorKeepsScoreAndWarns)
}

func testBuildZeroDenominatorKeepsScoreAndWarns(t *testing.T, set vtSet) {
	report := withAttributes(t, set.load(t, set.ip), func(a map[string]any) {
		a["last_analysis_stats"] = map[string]any{"harmless": 0, "malicious": 0, "suspicious": 2, "undetected": 0, "timeout": 5}
	})
	e := valueObservable(t, TypeIPv4Addr, report.ID, []string{tlpGreen}, map[string]any{"x_opencti_score": 35})
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

func TestBuildReEnrichmentAddsNoDuplicates(t *testing.T) {
	forEachVTSet(t, testBuildReEnrichmentAddsNoDuplicates)
}

func testBuildReEnrichmentAddsNoDuplicates(t *testing.T, set vtSet) {
	report := set.load(t, set.taggedFile)
	if len(report.Attributes.Tags) < 2 {
		t.Fatalf("%s has %d tags; the label check needs several", set.taggedFile, len(report.Attributes.Tags))
	}
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
