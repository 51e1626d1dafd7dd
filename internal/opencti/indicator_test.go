package opencti

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/stix"
)

func TestBuildIndicatorThresholds(t *testing.T) {
	forEachVTSet(t, testBuildIndicatorThresholds)
}

func testBuildIndicatorThresholds(t *testing.T, set vtSet) {
	report := set.load(t, set.maliciousFile)
	e := fileEntity(t, TypeStixFile, report.Attributes.SHA256, []string{tlpAmber}, nil)
	n := set.maliciousCount
	tests := []struct {
		threshold int
		want      bool
	}{{0, false}, {-3, false}, {1, true}, {n, true}, {n + 1, false}}
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
	forEachVTSet(t, testBuildIndicatorValidUntilIsNowPlusMinutes)
}

func testBuildIndicatorValidUntilIsNowPlusMinutes(t *testing.T, set vtSet) {
	report := set.load(t, set.url)
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
	forEachVTSet(t, testBuildHostileURLGivesValidEscapedPattern)
}

func testBuildHostileURLGivesValidEscapedPattern(t *testing.T, set vtSet) {
	const hostile = `http://evil.example/a'b\c?q=x' OR '1'='1`
	report := withAttributes(t, set.load(t, set.url), func(a map[string]any) { a["url"] = hostile })
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
	comps, err := stix.PatternComparisons(pattern)
	if err != nil || len(comps) != 1 || comps[0].Value != hostile {
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
