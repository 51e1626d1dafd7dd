package stix

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseTLP(t *testing.T) {
	tests := []struct {
		in   string
		want TLP
	}{
		{"TLP:CLEAR", TLPClear},
		{"TLP:WHITE", TLPClear},
		{"tlp:white", TLPClear},
		{"TLP:GREEN", TLPGreen},
		{"Tlp:Amber", TLPAmber},
		{"TLP:AMBER+STRICT", TLPAmberStrict},
		{" tlp:amber+strict\n", TLPAmberStrict},
		{"TLP:RED", TLPRed},
	}
	for _, tt := range tests {
		got, err := ParseTLP(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseTLP(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "AMBER", "TLP:", "TLP:EX:CHIM", "TLP:AMBER STRICT", "PAP:RED", "TLP:TEST"} {
		if _, err := ParseTLP(bad); !errors.Is(err, ErrUnknownTLP) {
			t.Errorf("ParseTLP(%q) err = %v, want ErrUnknownTLP", bad, err)
		}
	}
}

func TestTLPOrderNamesAndIDs(t *testing.T) {
	order := []TLP{TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed}
	if !slices.IsSorted(order) {
		t.Errorf("levels are not ordered least to most restrictive: %v", order)
	}
	names := []string{"TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"}
	for i, l := range order {
		if l.String() != names[i] {
			t.Errorf("%d.String() = %s, want %s", int(l), l, names[i])
		}
		back, ok := TLPFromMarkingID(l.MarkingID())
		if !ok || back != l {
			t.Errorf("TLPFromMarkingID(%s) = %v, %v", l.MarkingID(), back, ok)
		}
		if got := MarkingDefinitionID("TLP", l.String()); got != l.MarkingID() {
			t.Errorf("MarkingDefinitionID(TLP, %s) = %s, want %s", l, got, l.MarkingID())
		}
		text, err := l.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var u TLP
		if err := u.UnmarshalText(text); err != nil || u != l {
			t.Errorf("text round trip of %s: %v, %v", l, u, err)
		}
	}
	var zero TLP
	if zero.Valid() || zero.MarkingID() != "" || zero.String() != "TLP(0)" {
		t.Errorf("zero TLP: valid %v, id %q, name %q", zero.Valid(), zero.MarkingID(), zero.String())
	}
	if _, err := zero.MarshalText(); !errors.Is(err, ErrUnknownTLP) {
		t.Errorf("zero TLP MarshalText err = %v", err)
	}
	if _, ok := TLPFromMarkingID("marking-definition--78ca4366-f5b8-4764-83f7-34ce38198e27"); ok {
		t.Error("TLPFromMarkingID accepted a non-TLP id")
	}
	var cfg struct{ Max TLP }
	if err := json.Unmarshal([]byte(`{"Max":"tlp:amber"}`), &cfg); err != nil || cfg.Max != TLPAmber {
		t.Errorf("TLP as a JSON config value: %v, %v", cfg.Max, err)
	}
}

// pyctiAllowed is pycti's check_max_tlp table (OpenCTIConnectorHelper,
// 6.x): for each max TLP, the entity TLPs that may be sent.
var pyctiAllowed = map[string][]string{
	"TLP:RED":          {"TLP:WHITE", "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"},
	"TLP:AMBER+STRICT": {"TLP:WHITE", "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT"},
	"TLP:AMBER":        {"TLP:WHITE", "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER"},
	"TLP:GREEN":        {"TLP:WHITE", "TLP:CLEAR", "TLP:GREEN"},
	"TLP:WHITE":        {"TLP:WHITE", "TLP:CLEAR"},
	"TLP:CLEAR":        {"TLP:WHITE", "TLP:CLEAR"},
}

func TestTLPAllowedMatchesPyctiCheckMaxTLP(t *testing.T) {
	entity := []string{"TLP:WHITE", "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED", "tlp:amber", "TLP:EX:CHIM", "TLP:TEST"}
	for maxName, allowed := range pyctiAllowed {
		maxTLP, err := ParseTLP(maxName)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entity {
			want := slices.Contains(allowed, e) || e == "tlp:amber" && slices.Contains(allowed, "TLP:AMBER")
			markings := []Marking{{DefinitionType: "TLP", Definition: e}}
			if got := TLPAllowed(markings, maxTLP); got != want {
				t.Errorf("entity %s, max %s: allowed = %v, want %v", e, maxName, got, want)
			}
		}
	}
}

func TestEntityTLP(t *testing.T) {
	amber := Marking{StandardID: TLPAmber.MarkingID(), DefinitionType: "TLP", Definition: "TLP:AMBER"}
	red := Marking{DefinitionType: "TLP", Definition: "TLP:RED"}
	pap := Marking{DefinitionType: "PAP", Definition: "PAP:RED"}
	statement := Marking{DefinitionType: "statement", Definition: "Copyright"}
	tests := []struct {
		name     string
		markings []Marking
		want     TLP
		ok       bool
	}{
		{"no marking is TLP:CLEAR", nil, TLPClear, true},
		{"one TLP marking", []Marking{amber}, TLPAmber, true},
		{"last TLP marking wins", []Marking{red, amber}, TLPAmber, true},
		{"last TLP marking wins even when less restrictive", []Marking{amber, {DefinitionType: "TLP", Definition: "TLP:GREEN"}}, TLPGreen, true},
		{"PAP and statements are ignored", []Marking{amber, pap, statement}, TLPAmber, true},
		{"only PAP is TLP:CLEAR", []Marking{pap}, TLPClear, true},
		{"definition type in any case", []Marking{{DefinitionType: "tlp", Definition: "tlp:red"}}, TLPRed, true},
		{"untyped TLP definition", []Marking{{Definition: "TLP:AMBER+STRICT"}}, TLPAmberStrict, true},
		{"marking known by id only", MarkingRefs([]string{TLPRed.MarkingID()}), TLPRed, true},
		{"TLP marking with an empty definition falls back to its id", []Marking{{StandardID: TLPGreen.MarkingID(), DefinitionType: "TLP"}}, TLPGreen, true},
		{"unknown ids are not TLP", MarkingRefs([]string{"marking-definition--78ca4366-f5b8-4764-83f7-34ce38198e27"}), TLPClear, true},
		{"unknown TLP definition fails", []Marking{amber, {DefinitionType: "TLP", Definition: "TLP:EX:CHIM"}}, 0, false},
		{"unknown TLP followed by a known one", []Marking{{DefinitionType: "TLP", Definition: "TLP:EX:CHIM"}, amber}, TLPAmber, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := EntityTLP(tt.markings)
			if got != tt.want || ok != tt.ok {
				t.Errorf("EntityTLP = %v, %v; want %v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if TLPAllowed(nil, 0) {
		t.Error("an invalid max allowed an entity")
	}
}

// TestEntityTLPOfRealEnrichmentMessages decodes the objectMarking of real
// enrichment messages (shared/testdata/opencti) into Marking.
func TestEntityTLPOfRealEnrichmentMessages(t *testing.T) {
	tests := []struct {
		file string
		want TLP
	}{
		{"enrichment_message_file_hybrid.json", TLPAmber},
		{"enrichment_message_url_hybrid.json", TLPClear},
		{"enrichment_message_artifact_fortisandbox.json", TLPAmber},
		{"enrichment_event_eset_report.json", TLPAmberStrict},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(sharedFile(t, "testdata/opencti/"+tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var msg struct {
				EnrichmentEntity struct {
					ObjectMarking []Marking `json:"objectMarking"`
				} `json:"enrichment_entity"`
			}
			if err := json.Unmarshal(data, &msg); err != nil {
				t.Fatal(err)
			}
			got, ok := EntityTLP(msg.EnrichmentEntity.ObjectMarking)
			if !ok || got != tt.want {
				t.Errorf("EntityTLP = %v, %v; want %v", got, ok, tt.want)
			}
			if tt.want == TLPAmberStrict && TLPAllowed(msg.EnrichmentEntity.ObjectMarking, TLPAmber) {
				t.Error("TLP:AMBER+STRICT entity allowed under max TLP:AMBER")
			}
		})
	}
}

func TestMarkingDefinitionTLP(t *testing.T) {
	tests := []struct {
		name string
		md   MarkingDefinition
		want TLP
		ok   bool
	}{
		{"STIX TLP definition", MarkingDefinition{DefinitionType: "tlp", Definition: map[string]string{"tlp": "amber+strict"}}, TLPAmberStrict, true},
		{"OpenCTI TLP definition", MarkingDefinition{DefinitionType: "TLP", Definition: map[string]string{"TLP": "TLP:RED"}}, TLPRed, true},
		{"fixed id", MarkingDefinition{ID: TLPGreen.MarkingID()}, TLPGreen, true},
		{"custom TLP", MarkingDefinition{DefinitionType: "TLP", Definition: map[string]string{"TLP": "TLP:TEST"}}, 0, false},
		{"statement", MarkingDefinition{DefinitionType: "statement", Definition: map[string]string{"statement": "x"}}, 0, false},
	}
	for _, tt := range tests {
		got, ok := tt.md.TLP()
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: TLP() = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	for _, l := range []TLP{TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed} {
		if got, ok := TLPMarkingDefinition(l).TLP(); !ok || got != l {
			t.Errorf("TLPMarkingDefinition(%s).TLP() = %v, %v", l, got, ok)
		}
	}
}

func TestCheckTLPFailsClosed(t *testing.T) {
	red := "marking-definition--0d7a1b2c-3e4f-4a5b-8c6d-7e8f9a0b1c2d"
	tests := []struct {
		name     string
		markings []Marking
		max      TLP
		blocked  string // "" = allowed; else a text the reason must contain
	}{
		{"no marking is TLP:CLEAR", nil, TLPGreen, ""},
		{"fixed TLP id at the ceiling", MarkingRefs([]string{TLPGreen.MarkingID()}), TLPGreen, ""},
		{"fixed TLP id above the ceiling", MarkingRefs([]string{TLPRed.MarkingID()}), TLPAmber, "TLP:RED"},
		{"an id nobody resolved blocks", MarkingRefs([]string{red}), TLPRed, "could not be resolved"},
		{"a platform-created TLP:RED resolved blocks", []Marking{{StandardID: red, DefinitionType: "TLP", Definition: "TLP:RED"}}, TLPAmber, red},
		{"the most restrictive wins, not the last", []Marking{{StandardID: red, DefinitionType: "TLP", Definition: "TLP:RED"}, {StandardID: TLPClear.MarkingID()}}, TLPAmber, "TLP:RED"},
		{"an unknown TLP blocks", []Marking{{StandardID: red, DefinitionType: "TLP", Definition: "TLP:EX:CHIM"}}, TLPRed, "does not know"},
		{"a PAP marking does not count", []Marking{{StandardID: red, DefinitionType: "PAP", Definition: "PAP:RED"}}, TLPClear, ""},
		{"AMBER+STRICT is above AMBER", MarkingRefs([]string{TLPAmberStrict.MarkingID()}), TLPAmber, "AMBER+STRICT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTLP(tt.markings, tt.max)
			switch {
			case tt.blocked == "" && err != nil:
				t.Errorf("blocked: %v", err)
			case tt.blocked != "" && (!errors.Is(err, ErrTLPBlocked) || !strings.Contains(err.Error(), tt.blocked)):
				t.Errorf("error %v, want ErrTLPBlocked naming %q", err, tt.blocked)
			}
		})
	}
}
