package carbonblack

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestBuildReports(t *testing.T) {
	v := func(md5 string, pos, total int, upd time.Time) Verdict {
		return Verdict{MD5: md5, Found: true, Positives: pos, Total: total, UpdatedAt: upd}
	}
	md5a, md5b := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	ids := func(rs []Report) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		vs   []Verdict
		opts FeedOptions
		want []string
	}{
		{"no verdicts", nil, FeedOptions{}, []string{}},
		{"MinPositives 0 means 1", []Verdict{v(md5a, 1, 70, feedTestTime), v(md5b, 0, 70, feedTestTime)}, FeedOptions{}, []string{"Binary_" + md5a}},
		{"threshold is inclusive", []Verdict{v(md5a, 3, 70, feedTestTime), v(md5b, 2, 70, feedTestTime)}, FeedOptions{MinPositives: 3}, []string{"Binary_" + md5a}},
		{"not found is omitted", []Verdict{{MD5: md5a, Positives: 5, Total: 70}}, FeedOptions{}, []string{}},
		{"score 0 is omitted", []Verdict{v(md5a, 5, 0, feedTestTime)}, FeedOptions{}, []string{}},
		{"invalid md5 is skipped", []Verdict{v("not-an-md5", 5, 70, feedTestTime), v(md5a[:31], 5, 70, feedTestTime)}, FeedOptions{}, []string{}},
		{"sorted by id", []Verdict{v(md5b, 5, 70, feedTestTime), v(md5a, 5, 70, feedTestTime)}, FeedOptions{}, []string{"Binary_" + md5a, "Binary_" + md5b}},
		{"lower-case md5 gets an upper-case id", []Verdict{v(strings.ToLower(md5a), 5, 70, feedTestTime)}, FeedOptions{}, []string{"Binary_" + md5a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := BuildReports(tc.vs, tc.opts)
			if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
				t.Errorf("report ids (-want +got):\n%s", diff)
			}
			if errs := ValidateFeed(Feed{FeedInfo: goldenFeedInfo(t), Reports: got}); errs != nil {
				t.Errorf("built reports are invalid: %v", errors.Join(errs...))
			}
		})
	}

	t.Run("duplicate md5 keeps the newest verdict", func(t *testing.T) {
		got := BuildReports([]Verdict{v(md5a, 5, 70, feedTestTime), v(strings.ToLower(md5a), 9, 70, feedTestTime.Add(time.Hour)), v(md5a, 7, 70, feedTestTime)}, FeedOptions{})
		if len(got) != 1 || got[0].Score != 100*9/70 || got[0].Timestamp != feedTestTime.Add(time.Hour).Unix() {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("fields", func(t *testing.T) {
		vs := []Verdict{{
			MD5: "0123456789ABCDEF0123456789ABCDEF", SHA256: strings.Repeat("AB", 32), Found: true,
			Positives: 1, Total: 200, UpdatedAt: feedTestTime, ScanDate: feedTestTime.Add(-time.Hour), Link: "https://vt.example/x",
		}}
		want := Report{
			ID: "Binary_0123456789ABCDEF0123456789ABCDEF", Timestamp: feedTestTime.Unix(), Link: "https://vt.example/x",
			Title:       "VirusTotal: 1/200 engines detect 0123456789abcdef0123456789abcdef",
			Description: "Detected by 1 of 200 engines.",
			Score:       1, // trunc(0.5) raised to 1
			IOCs:        IOCs{MD5: []string{"0123456789abcdef0123456789abcdef"}, SHA256: []string{strings.Repeat("ab", 32)}},
		}
		if diff := cmp.Diff([]Report{want}, BuildReports(vs, FeedOptions{IncludeSHA256: true})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("fallbacks for link, timestamp and a bad sha256", func(t *testing.T) {
		vs := []Verdict{
			{MD5: md5a, SHA256: "xyz", Found: true, Positives: 5, Total: 70, ScanDate: feedTestTime},
			{MD5: md5b, SHA256: strings.Repeat("c", 64), Found: true, Positives: 5, Total: 70},
		}
		got := BuildReports(vs, FeedOptions{IncludeSHA256: true})
		if got[0].Link != "https://www.virustotal.com/gui/file/"+strings.ToLower(md5a) || got[0].Timestamp != feedTestTime.Unix() || got[0].IOCs.SHA256 != nil {
			t.Errorf("report a = %+v", got[0])
		}
		if got[1].Link != "https://www.virustotal.com/gui/file/"+strings.Repeat("c", 64) || got[1].Timestamp != 0 {
			t.Errorf("report b = %+v", got[1])
		}
	})
}

// TestMD5Case pins the decision on hash case: the id keeps the original
// connector's upper-case form, the IOCs are lower case, and the validator
// accepts both cases.
func TestMD5Case(t *testing.T) {
	r := BuildReports([]Verdict{{MD5: "ABCDEF0123456789ABCDEF0123456789", Found: true, Positives: 1, Total: 1}}, FeedOptions{})[0]
	if r.ID != "Binary_ABCDEF0123456789ABCDEF0123456789" || r.IOCs.MD5[0] != "abcdef0123456789abcdef0123456789" {
		t.Errorf("id %q, md5 %q", r.ID, r.IOCs.MD5[0])
	}
	if p := checkIOC("md5", "ABCDEF0123456789ABCDEF0123456789"); p != "" {
		t.Errorf("upper-case md5 refused: %s", p)
	}
}

func TestReportTextIsSafe(t *testing.T) {
	hostile := "x\n<script>alert('x')</script>\r\x00\x1b[31m\u202e\u2028\u200b&amp;"
	var dets []Detection
	for i := range 5 {
		dets = append(dets, Detection{Engine: fmt.Sprintf("Engine%d%s", i, hostile), Result: hostile})
	}
	vs := []Verdict{{MD5: strings.Repeat("A", 32), Found: true, Positives: 5, Total: 10, Label: hostile + strings.Repeat("L", 300), Detections: dets}}
	r := BuildReports(vs, FeedOptions{})[0]
	for field, s := range map[string]string{"title": r.Title, "description": r.Description} {
		if strings.IndexFunc(s, isLineBreakOrControl) >= 0 || strings.ContainsAny(s, "\u202e\u200b") {
			t.Errorf("%s keeps control or format characters: %q", field, s)
		}
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8: %q", field, s)
		}
	}
	if n := utf8.RuneCountInString(r.Title); n > maxTitleRunes {
		t.Errorf("title has %d runes", n)
	}
	if !strings.HasPrefix(r.Title, "VirusTotal: 5/10 engines detect "+strings.Repeat("a", 32)+" (x <script>") || !strings.HasSuffix(r.Title, "…)") {
		t.Errorf("title = %q", r.Title)
	}
	if !strings.HasPrefix(r.Description, "Detected by: Engine0x <script>alert('x')</script> [31m &amp; (x <script>") {
		t.Errorf("description = %q", r.Description)
	}
	// In the JSON, HTML-significant characters are escaped.
	c := newFixedFeedCache()
	if err := c.Render(goldenFeedInfo(t), []Report{r}); err != nil {
		t.Fatal(err)
	}
	if body := c.Current().Body(); bytes.Contains(body, []byte("<script>")) || !bytes.Contains(body, []byte(`\u003cscript\u003e`)) {
		t.Errorf("the JSON does not escape HTML: %s", body)
	}
}

func TestReportDescriptionIsCapped(t *testing.T) {
	var dets []Detection
	for i := range 70 {
		dets = append(dets, Detection{Engine: fmt.Sprintf("Engine-%02d-%s", i, strings.Repeat("e", 20)), Result: strings.Repeat("r", 30)})
	}
	d := reportDescription(Verdict{Positives: 70, Total: 70, Detections: dets})
	if n := utf8.RuneCountInString(d); n > maxDescriptionRunes {
		t.Errorf("description has %d runes, more than %d", n, maxDescriptionRunes)
	}
	if !strings.HasPrefix(d, "Detected by: Engine-00-") || !strings.Contains(d, ", and ") || !strings.HasSuffix(d, " more") {
		t.Errorf("description = %q", d)
	}
	// Every engine is either listed or counted.
	var listed, more int
	listed = strings.Count(d, "Engine-")
	if _, err := fmt.Sscanf(d[strings.LastIndex(d, ", and ")+len(", and "):], "%d more", &more); err != nil {
		t.Fatal(err)
	}
	if listed+more != 70 {
		t.Errorf("%d listed + %d more != 70", listed, more)
	}
}

func TestCleanText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 80, "plain"},
		{"  two\n\nlines \r\n ", 80, "two lines"},
		{"tab\there", 80, "tab here"},
		{"nul\x00bell\x07del\x7f", 80, "nulbelldel"},
		{"bidi\u202eoverride\u200bzero", 80, "bidioverridezero"},
		{"line\u2028sep", 80, "line sep"},
		{"bad\xffutf8", 80, "badutf8"},
		{"keep \ufffd replacement", 80, "keep \ufffd replacement"},
		{"<b>&amp;</b>", 80, "<b>&amp;</b>"},
		{"0123456789abc", 10, "012345678…"},
		{"01234567 9abc", 10, "01234567…"},
		{"0123456789", 10, "0123456789"},
		{"ééééééééééé", 10, "ééééééééé…"},
	} {
		if got := cleanText(tc.in, tc.max); got != tc.want {
			t.Errorf("cleanText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// BenchmarkBuildReports100k measures turning 100,000 verdicts into reports.
func BenchmarkBuildReports100k(b *testing.B) {
	vs := syntheticVerdicts(100_000)
	b.ReportAllocs()
	for b.Loop() {
		if got := BuildReports(vs, FeedOptions{IncludeSHA256: true}); len(got) != len(vs) {
			b.Fatal(len(got))
		}
	}
}

func TestPrivateVerdictSaysItIsPrivate(t *testing.T) {
	v := Verdict{MD5: "0123456789ABCDEF0123456789ABCDEF", Found: true, Positives: 2, Total: 3, Private: true,
		Detections: []Detection{{Engine: "Zenbox", Result: "Emotet"}}}
	r := buildReport(v, FeedOptions{})
	if !strings.Contains(r.Title, "private scan") || !strings.Contains(r.Title, "2/3 sandboxes") {
		t.Errorf("title %q does not say the verdict comes from a private analysis", r.Title)
	}
	if !strings.HasPrefix(r.Description, "Private analysis") || !strings.Contains(r.Description, "Zenbox (Emotet)") {
		t.Errorf("description %q", r.Description)
	}
	v.Private = false
	if r := buildReport(v, FeedOptions{}); strings.Contains(r.Title, "private") {
		t.Errorf("a public verdict's title mentions a private scan: %q", r.Title)
	}
}
