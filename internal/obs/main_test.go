package obs

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// updateGolden rewrites the golden files in testdata: go test -update.
var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got); run go test -update if the change is intended:\n%s", name, diff)
	}
}

// fixedNow is the fixture's clock: a Saturday afternoon, so that the
// last 24 hours cross a UTC midnight (the daily quota resets there).
var fixedNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type fakeEngine struct{ c engine.Counters }

func (f fakeEngine) Counters() engine.Counters { return f.c }

// usageAt is the fixture's quota use at t: the day count climbs two a
// minute from UTC midnight up to the budget, the minute slots cycle
// through 0–4, and calls were paused after a 429 for twenty minutes six
// hours ago and again in the last minute.
func usageAt(t time.Time) engine.Usage {
	midnight := engine.NextDay(t).AddDate(0, 0, -1)
	u := engine.Usage{
		MinuteInUse: (t.Minute() / 5) % 5,
		DayUsed:     min(int(t.Sub(midnight).Minutes()/2), 500),
		MonthUsed:   8500 + int(t.Sub(fixedNow.Add(-20*time.Hour)).Hours()*20),
	}
	if (!t.Before(fixedNow.Add(-6*time.Hour)) && t.Before(fixedNow.Add(-340*time.Minute))) || !t.Before(fixedNow.Add(-time.Minute)) {
		u.PausedUntil = t.Add(45 * time.Second)
	}
	return u
}

// Hostile strings the page must escape.
const (
	hostileLabel  = `<script>alert("label")</script>`
	hostileID     = `https://evil.example/?q=<img src=x onerror=alert(1)>&a="b"`
	hostileLink   = `javascript:alert(1)`
	hostileReason = `<b>maintenance</b> & "upgrade"`
	hostileMsg    = `Carbon Black at <https://cb.example> answered "401" & gave up`
)

func fixtureQueue() store.QueueStats {
	return store.QueueStats{
		Counts: []store.QueueCount{
			{Kind: "binary", State: store.StateDone, Count: 1200},
			{Kind: "binary", State: store.StateQueued, Count: 42},
			{Kind: "binary", State: store.StateRetry, Count: 3},
			{Kind: "deep_scan", State: store.StateLeased, Count: 1},
			{Kind: "deep_scan", State: store.StatePending, Count: 2},
		},
		OldestOpen:    fixedNow.Add(-(3*time.Hour + 7*time.Minute + 5*time.Second)),
		OldestOpenAge: 3*time.Hour + 7*time.Minute + 5*time.Second,
		Pause:         store.PauseState{Paused: true, Reason: hostileReason, Since: fixedNow.Add(-10 * time.Minute)},
	}
}

func fixtureVerdicts() []Verdict {
	return []Verdict{
		{Kind: "file", ID: "44d88612fea8a8f36de82e1278abb02f", Label: "trojan.eicar/test", Malicious: 62, Total: 71,
			Link: "https://www.virustotal.com/gui/file/275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f", At: fixedNow.Add(-2 * time.Minute)},
		{Kind: "file", ID: "D41D8CD98F00B204E9800998ECF8427E", Malicious: 0, Total: 70,
			Link: "https://www.virustotal.com/gui/file/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", At: fixedNow.Add(-5 * time.Minute)},
		{Kind: "url", ID: hostileID, Label: hostileLabel, Malicious: 3, Total: 90, Link: hostileLink, At: fixedNow.Add(-9 * time.Minute)},
	}
}

// fixture returns an Observer over fake sources at fixedNow, with 20
// hours of quota samples every 5 minutes, requests, and two problems.
func fixture(t *testing.T) (*Observer, *clock) {
	t.Helper()
	clk := &clock{t: fixedNow.Add(-20 * time.Hour)}
	o := New(Sources{
		Name:   "carbonblack",
		Engine: fakeEngine{engine.Counters{APICalls: 311, CacheHits: 1024, Shared: 17, Quota429: 2, Failures: 5}},
		Limits: engine.PublicKeyLimits,
		Quota: func(_ context.Context, now time.Time) (engine.Usage, error) {
			return usageAt(now), nil
		},
		Queue: func(context.Context) (store.QueueStats, error) { return fixtureQueue(), nil },
		Recent: func(_ context.Context, n int) ([]Verdict, error) {
			v := fixtureVerdicts()
			return v[:min(n, len(v))], nil
		},
		Waiting: func() (int, int) { return 1, 40 },
		Extra:   func() map[string]float64 { return map[string]float64{"feed_reports": 57, "feed_bytes": 48213} },
		Clock:   clk.Now,
	}, testLogger(t))
	for !clk.Now().After(fixedNow) {
		o.sample(t.Context())
		clk.Set(clk.Now().Add(5 * time.Minute))
	}
	clk.Set(fixedNow.Add(-90 * time.Minute))
	o.Problem(ProblemCarbonBlackUnreachable, "first message")
	clk.Set(fixedNow.Add(-30 * time.Second))
	o.Problem(ProblemCarbonBlackUnreachable, hostileMsg)
	clk.Set(fixedNow.Add(-2 * time.Hour))
	o.Problem(ProblemVTAuth, "VirusTotal rejected the API key (401 WrongCredentialsError)")
	o.Problem("resolved_already", "gone")
	o.Resolve("resolved_already")
	clk.Set(fixedNow)
	for range 7 {
		o.VTRequest("files", OutcomeOK, 180*time.Millisecond)
	}
	o.VTRequest("files", OutcomeNotFound, 90*time.Millisecond)
	o.VTRequest("files", OutcomeQuota, 40*time.Millisecond)
	o.VTRequest("analyses", OutcomeOK, 250*time.Millisecond)
	o.VTRequest("upload", OutcomeTransient, 12*time.Second)
	return o, clk
}

// testLogger logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records keeps the log lines of the loggers it makes.
type records struct {
	mu   sync.Mutex
	msgs []string
}

func (r *records) logger() *slog.Logger { return slog.New(recordHandler{r: r}) }

func (r *records) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

type recordHandler struct {
	r     *records
	attrs []slog.Attr
}

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) WithGroup(string) slog.Handler            { return h }
func (h recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return recordHandler{h.r, append(slices.Clip(h.attrs), as...)}
}

func (h recordHandler) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Level.String() + " " + rec.Message
	for _, a := range h.attrs {
		line += " " + a.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	h.r.msgs = append(h.r.msgs, line)
	return nil
}

// get serves a GET of path from the observer's handlers.
func get(t *testing.T, o *Observer, path string) *http.Response {
	t.Helper()
	mux := http.NewServeMux()
	o.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, b)
	}
	return string(b)
}

// scrape reads /metrics and flattens the vtconnector_ samples to
// `name{label="value",…}` → value; histograms give _count and _sum.
func scrape(t *testing.T, o *Observer) map[string]float64 {
	t.Helper()
	text := body(t, get(t, o, "/metrics"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, text)
	}
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, namespace+"_") {
			continue
		}
		for _, m := range f.GetMetric() {
			key := func(suffix string) string { return name + suffix + labels(m.GetLabel()) }
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key("_count")] = float64(m.GetHistogram().GetSampleCount())
				out[key("_sum")] = m.GetHistogram().GetSampleSum()
			default:
				out[key("")] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

func labels(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	m := map[string]string{}
	for _, l := range ls {
		m[l.GetName()] = l.GetValue()
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// pick returns the entries of m whose key starts with one of prefixes.
func pick(m map[string]float64, prefixes ...string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				out[k] = v
			}
		}
	}
	return out
}

var errSource = errors.New("dial tcp 10.9.8.7:5432: connect: connection refused (password=hunter2)")
