package opencti

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestScoreFromStatsRoundsHalfToEven(t *testing.T) {
	tests := []struct {
		name  string
		stats vt.Stats
		want  int
		ok    bool
	}{
		{"golden fixture 47 of 65", vt.Stats{Malicious: 47, Undetected: 18}, 72, true},
		{"12.5 rounds down to even", vt.Stats{Malicious: 1, Undetected: 7}, 12, true},
		{"37.5 rounds up to even", vt.Stats{Malicious: 3, Harmless: 5}, 38, true},
		{"0.5 rounds to 0", vt.Stats{Malicious: 1, Harmless: 199}, 0, true},
		{"1.5 rounds to 2", vt.Stats{Malicious: 3, Harmless: 197}, 2, true},
		{"2.5 rounds to 2", vt.Stats{Malicious: 1, Harmless: 39}, 2, true},
		{"72.5 rounds to 72", vt.Stats{Malicious: 29, Harmless: 11}, 72, true},
		{"all malicious", vt.Stats{Malicious: 70}, 100, true},
		{"suspicious, timeout and unsupported are ignored", vt.Stats{Malicious: 1, Harmless: 1, Suspicious: 50, Timeout: 3, TypeUnsupported: 9, Failure: 2, ConfirmedTimeout: 1}, 50, true},
		{"zero denominator", vt.Stats{Suspicious: 3, TypeUnsupported: 70}, 0, false},
		{"no verdicts at all", vt.Stats{}, 0, false},
		{"negative counts are refused", vt.Stats{Malicious: -1, Harmless: 5}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ScoreFromStats(tt.stats)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ScoreFromStats(%+v) = %d, %v; want %d, %v", tt.stats, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestScorePrefersGTIThreatScore(t *testing.T) {
	stats := &vt.Stats{Malicious: 47, Undetected: 18}
	tests := []struct {
		name        string
		gti         string // raw attributes.gti_assessment, "" for none
		want        vtScore
		wantWarning bool
	}{
		{"no GTI assessment", "", vtScore{value: 72, ok: true, source: "ratio"}, false},
		{"GTI score wins", `{"threat_score":{"value":85}}`, vtScore{value: 85, ok: true, source: "gti"}, false},
		{"GTI score is rounded half to even", `{"threat_score":{"value":42.5}}`, vtScore{value: 42, ok: true, source: "gti"}, false},
		{"GTI score is clamped", `{"threat_score":{"value":150}}`, vtScore{value: 100, ok: true, source: "gti"}, false},
		{"null GTI score falls back to the ratio", `{"threat_score":{"value":null}}`, vtScore{value: 72, ok: true, source: "ratio"}, false},
		{"null assessment falls back to the ratio", `null`, vtScore{value: 72, ok: true, source: "ratio"}, false},
		{"non-numeric GTI score falls back with a warning", `{"threat_score":{"value":"high"}}`, vtScore{value: 72, ok: true, source: "ratio"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := map[string]json.RawMessage{}
			if tt.gti != "" {
				attrs["gti_assessment"] = json.RawMessage(tt.gti)
			}
			got := computeScore(stats, attrs)
			if (got.warning != "") != tt.wantWarning {
				t.Errorf("warning = %q, want one: %v", got.warning, tt.wantWarning)
			}
			got.warning = ""
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(vtScore{})); diff != "" {
				t.Errorf("computeScore (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScoreZeroDenominatorLeavesScoreUnchanged(t *testing.T) {
	got := computeScore(&vt.Stats{TypeUnsupported: 12}, nil)
	if got.ok || got.warning == "" {
		t.Errorf("computeScore = %+v, want no score and a warning", got)
	}
	if got := computeScore(nil, nil); got.ok || got.warning == "" {
		t.Errorf("computeScore(no stats) = %+v, want no score and a warning", got)
	}
}

func TestScoreLowerScoreRule(t *testing.T) {
	tests := []struct {
		name         string
		vt, existing int
		has, replace bool
		wantEff      int
		wantKept     bool
	}{
		{name: "no existing score", vt: 20, wantEff: 20},
		{name: "higher existing score kept", vt: 20, existing: 90, has: true, wantEff: 90, wantKept: true},
		{name: "higher existing score replaced when allowed", vt: 20, existing: 90, has: true, replace: true, wantEff: 20},
		{name: "lower existing score raised", vt: 80, existing: 10, has: true, wantEff: 80},
		{name: "equal score is not a keep", vt: 50, existing: 50, has: true, wantEff: 50},
		{name: "existing zero is a score", vt: 0, existing: 0, has: true, wantEff: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eff, kept := applyLowerScoreRule(tt.vt, tt.existing, tt.has, tt.replace)
			if eff != tt.wantEff || kept != tt.wantKept {
				t.Errorf("applyLowerScoreRule = %d, %v; want %d, %v", eff, kept, tt.wantEff, tt.wantKept)
			}
		})
	}
}

func TestScoreOfEntity(t *testing.T) {
	tests := []struct {
		name   string
		stix   string
		want   int
		wantOK bool
	}{
		{"top-level x_opencti_score", `{"x_opencti_score": 40, "extensions": {"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82": {"score": 10}}}`, 40, true},
		{"SCO extension score", `{"extensions": {"extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82": {"extension_type": "property-extension", "score": 10}}}`, 10, true},
		{"SDO extension score first", `{"extensions": {"extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba": {"score": 65}, "extension-definition--f93e2c80-4231-4f9a-af8b-95c9bd566a82": {"score": 10}}}`, 65, true},
		{"null score is no score", `{"x_opencti_score": null}`, 0, false},
		{"no score", `{}`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Entity{STIX: decodeEntityJSON(t, tt.stix)}
			got, ok := e.Score()
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Score() = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
