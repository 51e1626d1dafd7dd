package opencti

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// yaraIndicators turns the crowdsourced YARA results into YARA Indicators
// related to the file (§5.13), with these fixes (§10.12): the pattern is
// the matched rule's own text (plus the imports it needs), valid_from is
// Now rather than the file's forgeable PE timestamp, x_opencti_detection is
// true, the description carries the real ruleset_id, and a missing
// ruleset is skipped for this build only (nothing is cached here).
func (b *builder) yaraIndicators() {
	seen := map[string]bool{}
	for i, r := range b.a.CrowdsourcedYARA {
		if r.RulesetID == "" {
			b.warn("crowdsourced_yara_results[%d] (%s) has no ruleset_id: skipped", i, r.RuleName)
			continue
		}
		rs := b.in.Rulesets[r.RulesetID]
		if rs == nil {
			b.warn("YARA ruleset %s (%s) was not provided: rule %s skipped", r.RulesetID, r.RulesetName, r.RuleName)
			continue
		}
		text, ok := extractYARARule(rs.Attributes.Rules, r.RuleName)
		if !ok {
			b.warn("YARA ruleset %s has no rule %q: skipped", r.RulesetID, r.RuleName)
			continue
		}
		ind := stix.NewIndicator(text, stix.PatternTypeYARA, b.in.Now)
		if seen[ind.ID] {
			continue
		}
		seen[ind.ID] = true
		ind.Name = orDefault(r.RuleName, "No rulename provided")
		ind.Description = yaraDescription(r)
		ind.CreatedByRef = b.author
		ind.ObjectMarkingRefs = slices.Clone(b.markings)
		ind.MainObservableType = TypeStixFile
		ind.Detection = new(true)
		ind.Score = b.scorePtr()
		b.add(ind)
		b.add(b.relationship(stix.RelRelatedTo, b.obs.ID, ind.ID))
	}
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// yaraDescription is the YARA Indicator description: a fenced code block
// holding a JSON object pretty-printed with a 2-space indent and ASCII
// escaping (Python json.dumps(indent=2)), keys in the original's order.
func yaraDescription(r vt.YARAResult) string {
	type desc struct {
		Description string `json:"description"`
		Author      string `json:"author"`
		Source      string `json:"source"`
		RulesetID   string `json:"ruleset_id"`
		RulesetName string `json:"ruleset_name"`
	}
	d := desc{
		Description: orDefault(r.Description, "No description provided"),
		Author:      orDefault(r.Author, "No author provided"),
		Source:      orDefault(r.Source, "No source provided"),
		RulesetID:   orDefault(r.RulesetID, "No ruleset id provided"),
		RulesetName: orDefault(r.RulesetName, "No ruleset name provided"),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(d) // strings only: cannot fail
	return "```\n" + asciiJSON(strings.TrimRight(buf.String(), "\n")) + "\n```"
}

// asciiJSON escapes every non-ASCII character of a JSON text as \uXXXX
// (surrogate pairs above U+FFFF), as Python's ensure_ascii does. Outside
// strings JSON is ASCII, so escaping the whole text is safe.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}
