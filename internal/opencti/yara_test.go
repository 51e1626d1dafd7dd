package opencti

import (
	"strings"
	"testing"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestBuildYARAIndicators(t *testing.T) {
	forEachVTSet(t, testBuildYARAIndicators)
}

func testBuildYARAIndicators(t *testing.T, set vtSet) {
	report := set.load(t, set.maliciousFile)
	rs := set.load(t, set.ruleset)
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
	if yara["x_opencti_detection"] != true || yara["valid_from"] != stix.FormatTimestamp(enrNow) || yara["name"] != set.yaraRule {
		t.Errorf("YARA indicator = %v", yara)
	}
	if !strings.Contains(yara["description"].(string), `"ruleset_id": "`+set.rulesetID+`"`) {
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
	if len(out.Warnings) != 1 || !strings.Contains(out.Warnings[0], set.rulesetID) {
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
