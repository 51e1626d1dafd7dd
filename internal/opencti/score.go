package opencti

import (
	"encoding/json"
	"math"

	"github.com/vtconnector/vtconnector/internal/vt"
)

// vtScore is the score VirusTotal gives an object, as the original
// connector computes it (builder.py _compute_score).
type vtScore struct {
	value  int
	ok     bool   // false: no score could be computed (see warning)
	source string // "gti" or "ratio"
	// warning explains a missing or unusual score.
	warning string
}

// computeScore returns the VirusTotal score of a report:
//
//  1. the Google Threat Intelligence score
//     attributes.gti_assessment.threat_score.value when present and a
//     number (rounded half to even and clamped to 0..100);
//  2. otherwise round-half-even(malicious / (harmless + undetected +
//     malicious) * 100), suspicious, timeout and the other counts being
//     ignored, exactly as Python's round() does it.
//
// A zero denominator (no verdicts, all engines "type-unsupported", a URL
// still being analysed) gives no score and a warning instead of failing
// the work as the original does (§10.8): the entity's score is then left
// as it is.
func computeScore(stats *vt.Stats, attrs map[string]json.RawMessage) vtScore {
	if v, ok, bad := gtiThreatScore(attrs); ok {
		return vtScore{value: v, ok: true, source: "gti"}
	} else if bad != "" {
		s := ratioScore(stats)
		s.warning = joinWarnings(bad, s.warning)
		return s
	}
	return ratioScore(stats)
}

func ratioScore(stats *vt.Stats) vtScore {
	if stats == nil {
		return vtScore{warning: "VirusTotal gave no last_analysis_stats: the score is left unchanged"}
	}
	v, ok := ScoreFromStats(*stats)
	if !ok {
		return vtScore{warning: "VirusTotal has no harmless, undetected or malicious verdict for this observable (it may be unsupported or still being analysed): the score is left unchanged"}
	}
	return vtScore{value: v, ok: true, source: "ratio"}
}

// ScoreFromStats is the original connector's ratio score:
// round-half-even(malicious / (harmless + undetected + malicious) * 100),
// computed in float64 like Python so that ties round the same way (72.5
// gives 72, 0.5 gives 0). ok is false when the denominator is 0.
func ScoreFromStats(s vt.Stats) (score int, ok bool) {
	den := s.Harmless + s.Undetected + s.Malicious
	if den <= 0 || s.Malicious < 0 || s.Harmless < 0 || s.Undetected < 0 {
		return 0, false
	}
	return clampScore(math.RoundToEven(float64(s.Malicious) / float64(den) * 100)), true
}

// gtiThreatScore reads attributes.gti_assessment.threat_score.value. ok is
// false when it is absent or null; bad explains a value that is present
// but unusable (then the ratio is used).
func gtiThreatScore(attrs map[string]json.RawMessage) (score int, ok bool, bad string) {
	raw, found := attrs["gti_assessment"]
	if !found {
		return 0, false, ""
	}
	var gti struct {
		ThreatScore *struct {
			Value json.RawMessage `json:"value"`
		} `json:"threat_score"`
	}
	if json.Unmarshal(raw, &gti) != nil || gti.ThreatScore == nil {
		return 0, false, ""
	}
	v := gti.ThreatScore.Value
	if len(v) == 0 || string(v) == "null" {
		return 0, false, ""
	}
	var f float64
	if err := json.Unmarshal(v, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, "VirusTotal gti_assessment.threat_score.value " + string(v) + " is not a number: using the detection ratio"
	}
	return clampScore(math.RoundToEven(f)), true, ""
}

func clampScore(f float64) int {
	switch {
	case f < 0:
		return 0
	case f > 100:
		return 100
	}
	return int(f)
}

// applyLowerScoreRule decides which score the entity ends up with. With
// replaceWithLower false, an existing score higher than the VirusTotal one
// is kept (kept = true; the caller adds a "VirusTotal Score" note). Unlike
// the original, the rule also applies to the GTI score (§10.8).
func applyLowerScoreRule(vtValue, existing int, hasExisting, replaceWithLower bool) (effective int, kept bool) {
	if hasExisting && !replaceWithLower && vtValue < existing {
		return existing, true
	}
	return vtValue, false
}

func joinWarnings(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
