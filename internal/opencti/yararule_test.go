package opencti

import (
	"strings"
	"testing"
)

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

// TestPatternYARAFromVTRuleset extracts the only rule of a VirusTotal
// ruleset answer: the synthetic one, and (fidelity) the real one.
func TestPatternYARAFromVTRuleset(t *testing.T) {
	forEachVTSet(t, testPatternYARAFromVTRuleset)
}

func testPatternYARAFromVTRuleset(t *testing.T, set vtSet) {
	rs := set.load(t, set.ruleset)
	got, ok := extractYARARule(rs.Attributes.Rules, set.yaraRule)
	if !ok {
		t.Fatal("rule not found")
	}
	if strings.TrimSpace(got) != strings.TrimSpace(rs.Attributes.Rules) {
		t.Errorf("the ruleset holds this one rule only; extraction changed it:\n%s", got)
	}
}
