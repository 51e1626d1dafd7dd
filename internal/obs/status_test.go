package obs

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
)

func TestStatusPageGolden(t *testing.T) {
	o, _ := fixture(t)
	golden(t, "status.golden.html", []byte(body(t, get(t, o, "/status"))))
}

func TestStatusPageEscapesHostileStrings(t *testing.T) {
	o, _ := fixture(t)
	page := body(t, get(t, o, "/status"))
	for _, bad := range []string{hostileLabel, hostileID, hostileReason, hostileMsg, "<script", "<img", "javascript:"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q unescaped", bad)
		}
	}
	if m := tagAttr.FindString(page); m != "" {
		t.Errorf("the page has a tag with a source or an event handler: %s", m)
	}
	for _, want := range []string{
		`&lt;script&gt;alert(&#34;label&#34;)&lt;/script&gt;`,
		`https://evil.example/?q=&lt;img src=x onerror=alert(1)&gt;&amp;a=&#34;b&#34;`,
		`&lt;b&gt;maintenance&lt;/b&gt; &amp; &#34;upgrade&#34;`,
		`Carbon Black at &lt;https://cb.example&gt; answered &#34;401&#34; &amp; gave up`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks the escaped %q", want)
		}
	}
}

// tagAttr finds a tag with an attribute that loads something or runs
// script.
var tagAttr = regexp.MustCompile(`<[a-zA-Z][^>]*\s(?:src|srcset|on[a-z]+|style)\s*=[^>]*>`)

func TestStatusPageIsSelfContained(t *testing.T) {
	o, _ := fixture(t)
	res := get(t, o, "/status")
	for name, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": contentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	page := body(t, res)
	if !strings.Contains(page, `<meta http-equiv="refresh" content="30">`) {
		t.Error("the page does not refresh itself")
	}
	if !strings.Contains(page, "<title>vtconnector — carbonblack</title>") {
		t.Error("the page's title is not vtconnector — carbonblack")
	}
	// No scripts, no external assets: the only absolute links are the
	// verdicts' VirusTotal reports and the SVG namespace.
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("the page contains %q", bad)
		}
	}
	if m := tagAttr.FindString(page); m != "" {
		t.Errorf("the page has a tag with a source or an event handler: %s", m)
	}
	for _, m := range regexp.MustCompile(`(?:href|xmlns)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		u := m[1]
		if strings.HasPrefix(u, "/") || strings.HasPrefix(u, "https://www.virustotal.com/gui/") || u == "http://www.w3.org/2000/svg" {
			continue
		}
		t.Errorf("the page links to %q", u)
	}
}

func TestStatusJSON(t *testing.T) {
	o, _ := fixture(t)
	res := get(t, o, "/status.json")
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got Status
	if err := json.Unmarshal([]byte(body(t, res)), &got); err != nil {
		t.Fatal(err)
	}
	if n := len(got.Quota.History); n != 81 { // 20 hours of samples touch 81 quarter-hours
		t.Errorf("history has %d spans, want 81", n)
	}
	got.Quota.History = nil
	verdicts := fixtureVerdicts()
	verdicts[2].Link = "" // not a web link
	want := Status{
		Name: "carbonblack",
		Now:  fixedNow,
		Problems: []Problem{
			{Key: ProblemVTAuth, Message: "VirusTotal rejected the API key (401 WrongCredentialsError)", Since: fixedNow.Add(-2 * time.Hour), LastSeen: fixedNow.Add(-2 * time.Hour)},
			{Key: ProblemCarbonBlackUnreachable, Message: hostileMsg, Since: fixedNow.Add(-90 * time.Minute), LastSeen: fixedNow.Add(-30 * time.Second)},
		},
		Quota: &QuotaStatus{
			Windows: []Window{
				{Window: "minute", Used: 1, Limit: 4, Remaining: 3, Percent: 25},
				{Window: "day", Used: 454, Limit: 500, Remaining: 46, Percent: 90},
				{Window: "month", Used: 8900, Limit: 15500, Remaining: 6600, Percent: 57},
			},
			PausedUntil: fixedNow.Add(45 * time.Second),
		},
		Queue: &QueueStatus{
			Counts: []QueueCount{
				{"binary", "done", 1200}, {"binary", "queued", 42}, {"binary", "retry", 3},
				{"deep_scan", "leased", 1}, {"deep_scan", "pending", 2},
			},
			Open:              48,
			OldestOpen:        fixedNow.Add(-(3*time.Hour + 7*time.Minute + 5*time.Second)),
			OldestOpenSeconds: 3*3600 + 7*60 + 5,
			Paused:            true,
			PausedReason:      hostileReason,
			PausedSince:       fixedNow.Add(-10 * time.Minute),
		},
		Engine: &EngineStatus{APICalls: 311, CacheHits: 1024, Shared: 17, Quota429: 2, Failures: 5, Interactive: 1, Backlog: 40},
		Requests: []RequestCount{
			{Name: "analyses", Outcome: "ok", Count: 1, MeanSeconds: 0.25},
			{Name: "files", Outcome: "not_found", Count: 1, MeanSeconds: 0.09},
			{Name: "files", Outcome: "ok", Count: 7, MeanSeconds: 0.18},
			{Name: "files", Outcome: "quota", Count: 1, MeanSeconds: 0.04},
			{Name: "upload", Outcome: "transient", Count: 1, MeanSeconds: 12},
		},
		Verdicts: &VerdictStatus{Items: verdicts},
		Extra:    map[string]float64{"feed_reports": 57, "feed_bytes": 48213},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Status{}, QueueStatus{})); diff != "" {
		t.Errorf("status.json (-want +got):\n%s", diff)
	}
}

func TestStatusWithoutSources(t *testing.T) {
	o := New(Sources{Name: "opencti", Clock: func() time.Time { return fixedNow }}, nil)
	page := body(t, get(t, o, "/status"))
	for _, want := range []string{
		`<section id="problems">`, "No problems.",
		`<section id="quota">`, "This daemon has no quota ledger to show.",
		`<section id="queue">`, "This daemon has no work queue.",
		`<section id="verdicts">`, "This daemon keeps no verdicts to show.",
		`<section id="requests">`, "No requests to VirusTotal since the daemon started.",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	js := body(t, get(t, o, "/status.json"))
	want := `{
  "name": "opencti",
  "now": "2026-03-14T15:09:26Z",
  "problems": [],
  "vt_requests": []
}
`
	if diff := cmp.Diff(want, js); diff != "" {
		t.Errorf("status.json (-want +got):\n%s", diff)
	}
}

func TestStatusShowsEnrichments(t *testing.T) {
	o := New(Sources{Name: "opencti"}, nil)
	o.Enrichment("StixFile", "ok", 2*time.Second)
	o.Enrichment("StixFile", "ok", 4*time.Second)
	page := body(t, get(t, o, "/status"))
	if !strings.Contains(page, `<section id="enrichments">`) ||
		!strings.Contains(page, `<tr><td>StixFile</td><td>ok</td><td class="num">2</td><td class="num">3.000 s</td></tr>`) {
		t.Errorf("the page does not show the enrichments:\n%s", page)
	}
}

func TestStatusHidesFailingSourcesErrors(t *testing.T) {
	rec := &records{}
	failing := func(context.Context) error { return fmt.Errorf("store: stats: %w", errSource) }
	o := New(Sources{
		Name:   "carbonblack",
		Limits: engine.PublicKeyLimits,
		Quota: func(ctx context.Context, _ time.Time) (engine.Usage, error) {
			return engine.Usage{}, failing(ctx)
		},
		Queue: func(ctx context.Context) (store.QueueStats, error) { return store.QueueStats{}, failing(ctx) },
		Recent: func(ctx context.Context, _ int) ([]Verdict, error) {
			return nil, failing(ctx)
		},
	}, rec.logger())
	page := body(t, get(t, o, "/status"))
	for _, want := range []string{
		"The quota is " + unavailable, "The queue is " + unavailable, "The recent verdicts are " + unavailable,
	} {
		if !strings.Contains(page, template.HTMLEscapeString(want)) {
			t.Errorf("the page lacks %q", want)
		}
	}
	js := body(t, get(t, o, "/status.json"))
	for _, secret := range []string{"hunter2", "10.9.8.7"} {
		if strings.Contains(page, secret) || strings.Contains(js, secret) {
			t.Errorf("the status shows the source's error (%q)", secret)
		}
	}
	if got := strings.Join(rec.lines(), "\n"); !strings.Contains(got, "hunter2") {
		t.Errorf("the log does not say why the sources failed:\n%s", got)
	}
}

func TestRecentIsCappedAndLinksAreWebOnly(t *testing.T) {
	var asked int
	o := New(Sources{Recent: func(_ context.Context, n int) ([]Verdict, error) {
		asked = n
		out := make([]Verdict, n+5) // a source that ignores n
		for i := range out {
			out[i] = Verdict{Kind: "file", ID: fmt.Sprint(i), Link: []string{"https://www.virustotal.com/gui/file/x", "ftp://x/y", "//evil.example/x", "/relative", "data:text/html,x"}[i%5]}
		}
		return out, nil
	}}, nil)
	st := o.Status(t.Context())
	if asked != RecentVerdicts || len(st.Verdicts.Items) != RecentVerdicts {
		t.Fatalf("asked for %d verdicts, showed %d; want %d", asked, len(st.Verdicts.Items), RecentVerdicts)
	}
	for _, v := range st.Verdicts.Items {
		if v.Link != "" && v.Link != "https://www.virustotal.com/gui/file/x" {
			t.Errorf("verdict %s keeps the link %q", v.ID, v.Link)
		}
	}
}

func TestFormatAge(t *testing.T) {
	for in, want := range map[time.Duration]string{
		0:                                  "0s",
		1499 * time.Millisecond:            "1s",
		59 * time.Second:                   "59s",
		12*time.Minute + 5*time.Second:     "12m05s",
		3*time.Hour + 7*time.Minute:        "3h07m",
		50*time.Hour + 59*time.Minute:      "2d02h",
		40*24*time.Hour + 23*time.Hour:     "40d23h",
		time.Hour - 400*time.Millisecond:   "1h00m",
		time.Minute - 300*time.Millisecond: "1m00s",
	} {
		if got := formatAge(in); got != want {
			t.Errorf("formatAge(%v) = %q, want %q", in, got, want)
		}
	}
}
