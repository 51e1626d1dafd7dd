package opencti

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestNoteOrderedMembersKeepsKeyOrder(t *testing.T) {
	got, err := orderedMembers(json.RawMessage(`{"Zeta": {"a": 1}, "alpha": "x", "Mid": null, "alpha2": [1, {"b": 2}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []jsonMember{
		{"Zeta", json.RawMessage(`{"a": 1}`)},
		{"alpha", json.RawMessage(`"x"`)},
		{"Mid", json.RawMessage(`null`)},
		{"alpha2", json.RawMessage(`[1, {"b": 2}]`)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("orderedMembers (-want +got):\n%s", diff)
	}
	for _, in := range []string{``, `null`, `  `} {
		if got, err := orderedMembers(json.RawMessage(in)); err != nil || got != nil {
			t.Errorf("orderedMembers(%q) = %v, %v; want nothing", in, got, err)
		}
	}
	for _, in := range []string{`[1]`, `"s"`, `{"a":}`, `{"a":1`} {
		if _, err := orderedMembers(json.RawMessage(in)); err == nil {
			t.Errorf("orderedMembers(%q) accepted", in)
		}
	}
}

func TestNoteCellEscaping(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Kaspersky", "Kaspersky"},
		{"", "N/A"},
		{"   ", "N/A"},
		{"a|b", `a\|b`},
		{"line1\nline2\r\nline3", "line1 line2  line3"},
		{`back\slash`, `back\\slash`},
		{"<script>alert(1)</script>", `\<script\>alert(1)\</script\>`},
		{"[link](http://x)", `\[link](http://x)`},
		{"![img](http://x)", `!\[img](http://x)`},
		{"Trojan:Win32/Wacatac.B!ml", "Trojan:Win32/Wacatac.B!ml"},
		{"*bold* `code` _em_", "*bold* `code` _em_"},
		{"tab\there\u2028sep", "tab here sep"},
	}
	for _, tt := range tests {
		if got := mdCell(tt.in); got != tt.want {
			t.Errorf("mdCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// cellCount counts the cells of a markdown table row, honouring \| escapes.
func cellCount(row string) int {
	n := 0
	for i := 0; i < len(row); i++ {
		switch row[i] {
		case '\\':
			i++
		case '|':
			n++
		}
	}
	return n - 1
}

// TestNoteHostileEngineNamesStayInTheirCells builds the results note of a
// report whose engine names and verdicts hold pipes, newlines and HTML:
// every row must keep its four cells and the table its rows.
func TestNoteHostileEngineNamesStayInTheirCells(t *testing.T) {
	report := vtObjectFromJSON(t, `{"type":"ip_address","id":"10.1.2.3","attributes":{
		"last_analysis_stats":{"harmless":1,"malicious":2,"suspicious":0,"undetected":0},
		"last_analysis_results":{
			"Evil|Engine":{"engine_name":"Evil|Engine\n| injected | row |","method":"blacklist","category":"malicious","result":"a|b"},
			"Second":{"engine_name":"Second","method":null,"category":"malicious","result":"<img src=x onerror=alert(1)>"},
			"Third":{"engine_name":"","method":"blacklist","category":"harmless","result":null}
		},
		"categories":{"Ven|dor":"cat\negory"}}}`)
	e := valueObservable(t, TypeIPv4Addr, "10.1.2.3", []string{tlpAmber}, nil)
	out, err := Build(enrInput(e, report, nil))
	if err != nil {
		t.Fatal(err)
	}
	note := byType(decodeObjects(t, out), "note")[0]
	content := note["content"].(string)
	lines := strings.Split(content, "\n")
	var engineRows, categoryRows []string
	section := ""
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "#"):
			section = l
		case strings.HasPrefix(l, "|") && !strings.HasPrefix(l, "|--") && !strings.HasPrefix(l, "| Engine name") && !strings.HasPrefix(l, "| Vendor"):
			switch section {
			case "### Last Analysis Results":
				engineRows = append(engineRows, l)
			case "### Categories":
				categoryRows = append(categoryRows, l)
			}
		}
	}
	if len(engineRows) != 3 || len(categoryRows) != 1 {
		t.Fatalf("%d engine rows and %d category rows, want 3 and 1:\n%s", len(engineRows), len(categoryRows), content)
	}
	for _, r := range engineRows {
		if n := cellCount(r); n != 4 {
			t.Errorf("row %q has %d cells, want 4", r, n)
		}
	}
	if n := cellCount(categoryRows[0]); n != 2 {
		t.Errorf("row %q has %d cells, want 2", categoryRows[0], n)
	}
	wantRows := []string{
		`| Evil\|Engine \| injected \| row \| | blacklist | malicious | a\|b |`,
		`| Second | N/A | malicious | \<img src=x onerror=alert(1)\> |`,
		`| Third | blacklist | harmless | N/A |`,
	}
	if diff := cmp.Diff(wantRows, engineRows); diff != "" {
		t.Errorf("engine rows (-want +got):\n%s", diff)
	}
	if strings.Contains(content, "None") {
		t.Errorf("Python None leaked into the note:\n%s", content)
	}
	validateObjects(t, out)
}

func TestNoteFileReportLayout(t *testing.T) {
	forEachVTSet(t, testNoteFileReportLayout)
}

func testNoteFileReportLayout(t *testing.T, set vtSet) {
	report := set.load(t, set.maliciousFile)
	e := fileEntity(t, TypeStixFile, report.Attributes.SHA256, []string{tlpAmber}, nil)
	out, err := Build(enrInput(e, report, nil))
	if err != nil {
		t.Fatal(err)
	}
	var note map[string]any
	for _, n := range byType(decodeObjects(t, out), "note") {
		if n["abstract"] == "VirusTotal Report" {
			note = n
		}
	}
	if note == nil {
		t.Fatal("no VirusTotal Report note")
	}
	content := note["content"].(string)
	head := set.fileNoteHead
	if !strings.HasPrefix(content, head) {
		t.Errorf("content starts\n%s\nwant\n%s", content[:min(len(content), len(head)+200)], head)
	}
	// The attributes block is separated from the table by a blank line,
	// uses ASCII quotes and ISO dates.
	i := strings.Index(content, "## Attributes Info")
	if i < 0 {
		t.Fatal("no attributes block")
	}
	if !strings.HasSuffix(content[:i], "|\n\n") {
		t.Errorf("attributes block not separated by a blank line: %q", content[i-20:i+20])
	}
	block := content[i:]
	for _, want := range []string{
		"## Attributes Info (StixFile: " + report.Attributes.SHA256 + ")\n\nAny falsy value will be replaced by 'N/A'\n\n",
		"| Last Submission | " + set.lastSubmission + " |",
		"| Popular Threat Label | " + set.threatLabel + " |",
		"| Names | N/A |", // the only name became the file's name
	} {
		if !strings.Contains(block, want) {
			t.Errorf("attributes block lacks %q:\n%s", want, block)
		}
	}
	if strings.ContainsAny(content, "\u2018\u2019") {
		t.Error("typographic quotes in the note")
	}
	// VirusTotal's engine order, not Go's map order.
	first, second := "| "+set.firstEngine+" |", "| "+set.secondEngine+" |"
	if !strings.Contains(content, first) || strings.Index(content, first) > strings.Index(content, second) {
		t.Error("engine rows not in VirusTotal's order")
	}
}

func TestNoteAttributeRowsForArtifactAndHostname(t *testing.T) {
	forEachVTSet(t, testNoteAttributeRowsForArtifactAndHostname)
}

func testNoteAttributeRowsForArtifactAndHostname(t *testing.T, set vtSet) {
	report := set.load(t, set.cleanFile)
	art := fileEntity(t, TypeArtifact, report.Attributes.SHA256, nil, nil)
	out, err := Build(enrInput(art, report, nil))
	if err != nil {
		t.Fatal(err)
	}
	notes := byType(decodeObjects(t, out), "note")
	if len(notes) != 1 || !strings.Contains(notes[0]["content"].(string), "## Attributes Info (Artifact: ") {
		t.Errorf("Artifact report note has no attributes block")
	}
	dom := set.load(t, set.hostname)
	host := valueObservable(t, TypeHostname, dom.ID, nil, nil)
	out, err = Build(enrInput(host, dom, nil))
	if err != nil {
		t.Fatal(err)
	}
	notes = byType(decodeObjects(t, out), "note")
	content := notes[0]["content"].(string)
	for _, want := range []string{"## Attributes Info (Hostname: " + dom.ID + ")", "| Creation Date | " + set.hostnameCreation + " |", "### Categories", set.hostnameCategoryRow} {
		if !strings.Contains(content, want) {
			t.Errorf("hostname note lacks %q:\n%s", want, content)
		}
	}
	// VirusTotal sent no per-engine result: the total is the verdict sum.
	if !strings.Contains(content, set.hostnameStatsRow) {
		t.Errorf("stats row wrong:\n%s", content)
	}
}

func TestNoteStableIDs(t *testing.T) {
	id := stableNoteID(noteKindReport, "file--11111111-1111-4111-8111-111111111111")
	if want := stix.NoteID("vtconnector:virustotal-report:file--11111111-1111-4111-8111-111111111111", time.Time{}); id != want {
		t.Errorf("stableNoteID = %s, want %s", id, want)
	}
	if id == stableNoteID(noteKindResults, "file--11111111-1111-4111-8111-111111111111") {
		t.Error("two note kinds share an id")
	}
	if id == stableNoteID(noteKindReport, "file--22222222-2222-4222-8222-222222222222") {
		t.Error("two entities share a note id")
	}
	n := newStableNote(noteKindScore, "x", "VirusTotal Score", "```\n1\n```", []string{"x"}, enrNow)
	m := newStableNote(noteKindScore, "x", "VirusTotal Score", "```\n99\n```", []string{"x"}, enrNow.Add(time.Hour))
	if n.ID != m.ID {
		t.Errorf("note id changes with content or time: %s, %s", n.ID, m.ID)
	}
}

func TestNoteScoreContent(t *testing.T) {
	if got := scoreNoteContent(72); got != "```\n72\n```" {
		t.Errorf("scoreNoteContent = %q", got)
	}
}

func TestBuildNoteIDStableAcrossReports(t *testing.T) {
	forEachVTSet(t, testBuildNoteIDStableAcrossReports)
}

func testBuildNoteIDStableAcrossReports(t *testing.T, set vtSet) {
	first := set.load(t, set.ip)
	second := withAttributes(t, first, func(a map[string]any) {
		a["last_analysis_stats"] = map[string]any{"harmless": 60, "malicious": 30, "suspicious": 1, "undetected": 3}
		a["as_owner"] = "SOMEONE ELSE"
	})
	e := valueObservable(t, TypeIPv4Addr, first.ID, []string{tlpGreen}, nil)
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
