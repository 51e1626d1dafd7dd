package obs

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestMetricsReportEventsAndSources(t *testing.T) {
	o, _ := fixture(t)
	o.VTRequest("urls", "something odd", time.Second) // unknown outcomes count as error
	o.Enrichment("StixFile", "ok", 3*time.Second)
	o.Enrichment("StixFile", "ok", time.Second)
	o.Enrichment("IPv4-Addr", "not_found", 500*time.Millisecond)

	got := scrape(t, o)
	const cb = `front="carbonblack"`
	want := map[string]float64{
		`vtconnector_vt_requests_total{endpoint="analyses",` + cb + `,outcome="ok"}`:      1,
		`vtconnector_vt_requests_total{endpoint="files",` + cb + `,outcome="not_found"}`:  1,
		`vtconnector_vt_requests_total{endpoint="files",` + cb + `,outcome="ok"}`:         7,
		`vtconnector_vt_requests_total{endpoint="files",` + cb + `,outcome="quota"}`:      1,
		`vtconnector_vt_requests_total{endpoint="upload",` + cb + `,outcome="transient"}`: 1,
		`vtconnector_vt_requests_total{endpoint="urls",` + cb + `,outcome="error"}`:       1,
		`vtconnector_vt_request_duration_seconds_count{endpoint="files",` + cb + `}`:      9,
		`vtconnector_vt_request_duration_seconds_sum{endpoint="files",` + cb + `}`:        7*0.18 + 0.09 + 0.04,
		`vtconnector_vt_request_duration_seconds_count{endpoint="analyses",` + cb + `}`:   1,
		`vtconnector_vt_request_duration_seconds_sum{endpoint="analyses",` + cb + `}`:     0.25,
		`vtconnector_vt_request_duration_seconds_count{endpoint="upload",` + cb + `}`:     1,
		`vtconnector_vt_request_duration_seconds_sum{endpoint="upload",` + cb + `}`:       12,
		`vtconnector_vt_request_duration_seconds_count{endpoint="urls",` + cb + `}`:       1,
		`vtconnector_vt_request_duration_seconds_sum{endpoint="urls",` + cb + `}`:         1,
		`vtconnector_enrichments_total{` + cb + `,outcome="ok",type="StixFile"}`:          2,
		`vtconnector_enrichments_total{` + cb + `,outcome="not_found",type="IPv4-Addr"}`:  1,
		`vtconnector_enrichment_duration_seconds_count{` + cb + `,type="StixFile"}`:       2,
		`vtconnector_enrichment_duration_seconds_sum{` + cb + `,type="StixFile"}`:         4,
		`vtconnector_enrichment_duration_seconds_count{` + cb + `,type="IPv4-Addr"}`:      1,
		`vtconnector_enrichment_duration_seconds_sum{` + cb + `,type="IPv4-Addr"}`:        0.5,
		`vtconnector_engine_api_calls_total{` + cb + `}`:                                  311,
		`vtconnector_cache_hits_total{` + cb + `}`:                                        1024,
		`vtconnector_lookups_shared_total{` + cb + `}`:                                    17,
		`vtconnector_vt_429_total{` + cb + `}`:                                            2,
		`vtconnector_engine_failures_total{` + cb + `}`:                                   5,
		`vtconnector_vt_quota_used{` + cb + `,window="minute"}`:                           1, // 15:09 → (9/5)%5
		`vtconnector_vt_quota_used{` + cb + `,window="day"}`:                              454,
		`vtconnector_vt_quota_used{` + cb + `,window="month"}`:                            8900,
		`vtconnector_vt_quota_limit{` + cb + `,window="minute"}`:                          4,
		`vtconnector_vt_quota_limit{` + cb + `,window="day"}`:                             500,
		`vtconnector_vt_quota_limit{` + cb + `,window="month"}`:                           15500,
		`vtconnector_vt_quota_remaining{` + cb + `,window="minute"}`:                      3,
		`vtconnector_vt_quota_remaining{` + cb + `,window="day"}`:                         46,
		`vtconnector_vt_quota_remaining{` + cb + `,window="month"}`:                       6600,
		`vtconnector_vt_quota_paused{` + cb + `}`:                                         1,
		`vtconnector_vt_waiting{` + cb + `,priority="interactive"}`:                       1,
		`vtconnector_vt_waiting{` + cb + `,priority="backlog"}`:                           40,
		`vtconnector_queue_oldest_open_seconds{` + cb + `}`:                               3*3600 + 7*60 + 5,
		`vtconnector_queue_paused{` + cb + `}`:                                            1,
		`vtconnector_problems{` + cb + `,key="carbonblack_unreachable"}`:                  1,
		`vtconnector_problems{` + cb + `,key="virustotal_auth"}`:                          1,
		`vtconnector_problems{` + cb + `,key="resolved_already"}`:                         0,
		`vtconnector_source_up{` + cb + `,source="quota"}`:                                1,
		`vtconnector_source_up{` + cb + `,source="queue"}`:                                1,
		`vtconnector_feed_reports{` + cb + `}`:                                            57,
		`vtconnector_feed_bytes{` + cb + `}`:                                              48213,
		`vtconnector_queue_items{` + cb + `,kind="binary",state="done"}`:                  1200,
		`vtconnector_queue_items{` + cb + `,kind="binary",state="queued"}`:                42,
		`vtconnector_queue_items{` + cb + `,kind="binary",state="retry"}`:                 3,
		`vtconnector_queue_items{` + cb + `,kind="binary",state="pending"}`:               0,
		`vtconnector_queue_items{` + cb + `,kind="binary",state="leased"}`:                0,
		`vtconnector_queue_items{` + cb + `,kind="binary",state="not_found"}`:             0,
		`vtconnector_queue_items{` + cb + `,kind="binary",state="failed"}`:                0,
		`vtconnector_queue_items{` + cb + `,kind="deep_scan",state="done"}`:               0,
		`vtconnector_queue_items{` + cb + `,kind="deep_scan",state="queued"}`:             0,
		`vtconnector_queue_items{` + cb + `,kind="deep_scan",state="retry"}`:              0,
		`vtconnector_queue_items{` + cb + `,kind="deep_scan",state="pending"}`:            2,
		`vtconnector_queue_items{` + cb + `,kind="deep_scan",state="leased"}`:             1,
		`vtconnector_queue_items{` + cb + `,kind="deep_scan",state="not_found"}`:          0,
		`vtconnector_queue_items{` + cb + `,kind="deep_scan",state="failed"}`:             0,
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

func TestMetricsHaveHelpAndTypes(t *testing.T) {
	o, _ := fixture(t)
	o.Enrichment("Url", "ok", time.Second)
	text := body(t, get(t, o, "/metrics"))
	for _, line := range []string{
		"# TYPE vtconnector_vt_requests_total counter",
		"# TYPE vtconnector_vt_request_duration_seconds histogram",
		"# TYPE vtconnector_enrichments_total counter",
		"# TYPE vtconnector_vt_quota_used gauge",
		"# TYPE vtconnector_vt_429_total counter",
		"# TYPE vtconnector_queue_items gauge",
		`vtconnector_vt_request_duration_seconds_bucket{endpoint="files",front="carbonblack",le="0.25"} 9`,
		"# TYPE go_goroutines gauge",
		"# TYPE promhttp_metric_handler_requests_total counter",
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("/metrics lacks the line %q", line)
		}
	}
}

func TestMetricsUnlimitedWindowsHaveNoBudget(t *testing.T) {
	o := New(Sources{
		Name:   "opencti",
		Limits: engine.Limits{PerMinute: 4},
		Quota: func(context.Context, time.Time) (engine.Usage, error) {
			return engine.Usage{MinuteInUse: 2, DayUsed: 900, MonthUsed: 20000}, nil
		},
	}, testLogger(t))
	got := pick(scrape(t, o), "vtconnector_vt_quota")
	want := map[string]float64{
		`vtconnector_vt_quota_used{front="opencti",window="minute"}`:      2,
		`vtconnector_vt_quota_used{front="opencti",window="day"}`:         900,
		`vtconnector_vt_quota_used{front="opencti",window="month"}`:       20000,
		`vtconnector_vt_quota_limit{front="opencti",window="minute"}`:     4,
		`vtconnector_vt_quota_remaining{front="opencti",window="minute"}`: 2,
		`vtconnector_vt_quota_paused{front="opencti"}`:                    0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("quota metrics (-want +got):\n%s", diff)
	}
}

func TestMetricsSurviveFailingSources(t *testing.T) {
	rec := &records{}
	o := New(Sources{
		Name:   "carbonblack",
		Engine: fakeEngine{engine.Counters{APICalls: 3}},
		Limits: engine.PublicKeyLimits,
		Quota: func(context.Context, time.Time) (engine.Usage, error) {
			return engine.Usage{}, fmt.Errorf("store: quota usage: %w", errSource)
		},
		Queue: func(ctx context.Context) (store.QueueStats, error) {
			<-ctx.Done() // a database that never answers
			return store.QueueStats{}, ctx.Err()
		},
		Extra: func() map[string]float64 {
			return map[string]float64{"feed_reports": 9, "bad-name": 1, "queue_items": 5, "": 2}
		},
		Timeout: 20 * time.Millisecond,
	}, rec.logger())
	o.VTRequest("files", OutcomeOK, time.Second)

	for range 3 {
		got := pick(scrape(t, o), "vtconnector_source_up", "vtconnector_engine_api_calls_total", "vtconnector_vt_requests_total",
			"vtconnector_vt_quota", "vtconnector_queue", "vtconnector_feed_reports", "vtconnector_bad")
		want := map[string]float64{
			`vtconnector_source_up{front="carbonblack",source="quota"}`:                        0,
			`vtconnector_source_up{front="carbonblack",source="queue"}`:                        0,
			`vtconnector_engine_api_calls_total{front="carbonblack"}`:                          3,
			`vtconnector_vt_requests_total{endpoint="files",front="carbonblack",outcome="ok"}`: 1,
			`vtconnector_feed_reports{front="carbonblack"}`:                                    9,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("metrics with failing sources (-want +got):\n%s", diff)
		}
	}

	var warnings []string
	for _, l := range rec.lines() {
		if strings.HasPrefix(l, "WARN") {
			warnings = append(warnings, l)
		}
	}
	// Each failure and each bad name is logged once, not at every scrape.
	if len(warnings) != 5 {
		t.Errorf("want 5 warnings (2 sources, 3 bad gauge names), got %d:\n%s", len(warnings), strings.Join(warnings, "\n"))
	}
}

func TestSourceRecoveryIsLogged(t *testing.T) {
	rec := &records{}
	fail := true
	o := New(Sources{
		Quota: func(context.Context, time.Time) (engine.Usage, error) {
			if fail {
				return engine.Usage{}, errSource
			}
			return engine.Usage{DayUsed: 1}, nil
		},
	}, rec.logger())
	scrape(t, o)
	fail = false
	got := scrape(t, o)
	if got[`vtconnector_source_up{source="quota"}`] != 1 || got[`vtconnector_vt_quota_used{window="day"}`] != 1 {
		t.Errorf("after recovery: %v", got)
	}
	want := []string{
		`WARN status source failed; its values are skipped component=obs source=quota error=` + errSource.Error(),
		`INFO status source recovered component=obs source=quota`,
	}
	if diff := cmp.Diff(want, rec.lines()); diff != "" {
		t.Errorf("log (-want +got):\n%s", diff)
	}
}

func TestObserversHaveTheirOwnRegistries(t *testing.T) {
	a := New(Sources{Name: "carbonblack"}, nil)
	b := New(Sources{Name: "opencti"}, nil)
	a.VTRequest("files", OutcomeOK, time.Millisecond)
	if got := pick(scrape(t, b), "vtconnector_vt_requests_total"); len(got) != 0 {
		t.Errorf("b reports a's requests: %v", got)
	}
	if got := pick(scrape(t, a), "vtconnector_vt_requests_total"); len(got) != 1 {
		t.Errorf("a's requests: %v", got)
	}
}

func TestProblemsRaiseRefreshAndResolve(t *testing.T) {
	clk := &clock{t: fixedNow}
	o := New(Sources{Clock: clk.Now}, nil)
	o.Problem(ProblemPlatformUnreachable, "OpenCTI at https://opencti.example: connection refused")
	clk.Set(fixedNow.Add(time.Minute))
	o.Problem(ProblemPlatformUnreachable, "OpenCTI at https://opencti.example: timeout")
	o.Problem(ProblemVTAuth, strings.Repeat("é", 400))

	got := o.Problems()
	want := []Problem{
		{Key: ProblemPlatformUnreachable, Message: "OpenCTI at https://opencti.example: timeout", Since: fixedNow, LastSeen: fixedNow.Add(time.Minute)},
		{Key: ProblemVTAuth, Message: strings.Repeat("é", 250) + "…", Since: fixedNow.Add(time.Minute), LastSeen: fixedNow.Add(time.Minute)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}

	o.Resolve(ProblemPlatformUnreachable)
	o.Resolve("never_raised")
	if got := o.Problems(); len(got) != 1 || got[0].Key != ProblemVTAuth {
		t.Errorf("after resolve: %v", got)
	}
	m := pick(scrape(t, o), "vtconnector_problems")
	wantM := map[string]float64{
		`vtconnector_problems{key="platform_unreachable"}`: 0,
		`vtconnector_problems{key="virustotal_auth"}`:      1,
	}
	if diff := cmp.Diff(wantM, m); diff != "" {
		t.Errorf("problem gauges (-want +got):\n%s", diff)
	}
}

func TestVTOutcome(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"success", nil, OutcomeOK},
		{"404", &vt.APIError{Status: 404, Code: "NotFoundError"}, OutcomeNotFound},
		{"429", &vt.QuotaError{APIError: vt.APIError{Status: 429}}, OutcomeQuota},
		{"wrapped 401", fmt.Errorf("engine: lookup: %w", &vt.APIError{Status: 401, Code: "WrongCredentialsError"}), OutcomeAuth},
		{"403", &vt.APIError{Status: 403}, OutcomeAuth},
		{"503", &vt.APIError{Status: 503}, OutcomeTransient},
		{"504", &vt.APIError{Status: 504}, OutcomeTransient},
		{"400", &vt.APIError{Status: 400, Code: "InvalidArgumentError"}, OutcomeBadRequest},
		{"413", &vt.APIError{Status: 413}, OutcomeBadRequest},
		{"canceled", context.Canceled, OutcomeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := VTOutcome(tt.err); got != tt.want {
				t.Errorf("VTOutcome(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestTruncateKeepsWholeCharacters(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("a", maxMessage), strings.Repeat("a", maxMessage)},
		{strings.Repeat("a", maxMessage+1), strings.Repeat("a", maxMessage) + "…"},
		{"a" + strings.Repeat("é", 400), "a" + strings.Repeat("é", 249) + "…"},
		{"\xff" + strings.Repeat("b", 600), "\xff" + strings.Repeat("b", maxMessage-1) + "…"},
	} {
		if got := truncate(tt.in, maxMessage); got != tt.want {
			t.Errorf("truncate(%.20q…) = %.20q… (%d bytes), want %d bytes", tt.in, got, len(got), len(tt.want))
		}
	}
}
