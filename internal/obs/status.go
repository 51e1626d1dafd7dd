package obs

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
)

// RecentVerdicts is how many recent verdicts the status shows.
const RecentVerdicts = 25

// unavailable is what the page says of a source that failed; the error
// itself goes to the log only, since it could name a host or a path that
// the page's readers should not see.
const unavailable = "unavailable: reading it failed (the daemon's log says why)"

// Status is what the status page shows, and what /status.json serves.
type Status struct {
	Name        string         `json:"name"`
	Now         time.Time      `json:"now"`
	Problems    []Problem      `json:"problems"`
	Notes       []Note         `json:"notes,omitempty"`
	Quota       *QuotaStatus   `json:"quota,omitempty"` // nil without a Quota source
	Queue       *QueueStatus   `json:"queue,omitempty"` // nil without a Queue source
	Engine      *EngineStatus  `json:"engine,omitempty"`
	Requests    []RequestCount `json:"vt_requests"`
	Enrichments []RequestCount `json:"enrichments,omitempty"`
	// UploadsRefused counts the uploads the upload policy refused, by reason.
	UploadsRefused []RefusalCount     `json:"uploads_refused,omitempty"`
	Verdicts       *VerdictStatus     `json:"verdicts,omitempty"` // nil without a Recent source
	Extra          map[string]float64 `json:"extra,omitempty"`

	charts []chart // the quota charts, for the page
}

// QuotaStatus is the quota use against the budget.
type QuotaStatus struct {
	Windows     []Window  `json:"windows"`
	PausedUntil time.Time `json:"paused_until,omitzero"` // set while cooling down after a 429
	// BudgetSource says whether the budget is configured or learned from
	// VirusTotal, and when (engine.Budget.Source); empty without a Budget source.
	BudgetSource string         `json:"budget_source,omitempty"`
	History      []HistoryPoint `json:"history"` // the last 24 hours in 15-minute spans
	Error        string         `json:"error,omitempty"`
}

// QueueStatus is the work queue by kind and state.
type QueueStatus struct {
	Counts            []QueueCount `json:"counts"`
	Open              int64        `json:"open"`
	OldestOpen        time.Time    `json:"oldest_open,omitzero"`
	OldestOpenSeconds float64      `json:"oldest_open_seconds"`
	Paused            bool         `json:"paused"`
	PausedReason      string       `json:"paused_reason,omitempty"`
	PausedSince       time.Time    `json:"paused_since,omitzero"`
	Error             string       `json:"error,omitempty"`

	rows []queueRow // per kind, the count of each state of queueStates
}

// QueueCount is the number of items of one kind in one state.
type QueueCount struct {
	Kind  string `json:"kind"`
	State string `json:"state"`
	Count int64  `json:"count"`
}

// EngineStatus mirrors engine.Counters.
type EngineStatus struct {
	APICalls    int64 `json:"api_calls"`
	CacheHits   int64 `json:"cache_hits"`
	Shared      int64 `json:"shared"`
	Quota429    int64 `json:"quota_429"`
	Failures    int64 `json:"failures"`
	Interactive int   `json:"waiting_interactive"`
	Backlog     int   `json:"waiting_backlog"`
}

// RequestCount counts VirusTotal requests of one endpoint (or
// enrichments of one entity type) with one outcome.
type RequestCount struct {
	Name        string  `json:"name"` // endpoint or entity type
	Outcome     string  `json:"outcome"`
	Count       int64   `json:"count"`
	MeanSeconds float64 `json:"mean_seconds"`
}

// RefusalCount is the number of uploads refused for one reason.
type RefusalCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// VerdictStatus is the recent verdicts, newest first.
type VerdictStatus struct {
	Items []Verdict `json:"items"`
	Error string    `json:"error,omitempty"`
}

// Status reads the sources and the recorded events.
func (o *Observer) Status(ctx context.Context) Status {
	now := o.now()
	st := Status{Name: o.src.Name, Now: now.UTC(), Problems: o.Problems(), Notes: o.Notes()}

	if o.src.Quota != nil {
		q := &QuotaStatus{}
		lim := o.src.Limits
		if o.src.Budget != nil {
			b := o.src.Budget()
			lim, q.BudgetSource = b.Limits, b.Source()
		}
		if u, ok := o.quota(ctx, now); ok {
			q.Windows = windows(u, lim)
			if u.PausedUntil.After(now) {
				q.PausedUntil = u.PausedUntil.UTC()
			}
		} else {
			q.Error = unavailable
		}
		q.History = bucketize(o.samples(now), now)
		st.charts = charts(q.History, lim, now)
		st.Quota = q
	}

	if o.src.Queue != nil {
		q := &QueueStatus{}
		if s, ok := o.queue(ctx); ok {
			q.fill(s)
		} else {
			q.Error = unavailable
		}
		st.Queue = q
	}

	if c := o.engineCounters(); o.src.Engine != nil || o.src.Waiting != nil || c != (engine.Counters{}) {
		e := &EngineStatus{}
		e.APICalls, e.CacheHits, e.Shared, e.Quota429, e.Failures = c.APICalls, c.CacheHits, c.Shared, c.Quota429, c.Failures
		if o.src.Waiting != nil {
			e.Interactive, e.Backlog = o.src.Waiting()
		}
		st.Engine = e
	}

	o.mu.Lock()
	st.Requests = counts(o.requests)
	st.Enrichments = counts(o.enriched)
	for reason, n := range o.refused {
		st.UploadsRefused = append(st.UploadsRefused, RefusalCount{Reason: reason, Count: n})
	}
	slices.SortFunc(st.UploadsRefused, func(a, b RefusalCount) int { return strings.Compare(a.Reason, b.Reason) })
	o.mu.Unlock()

	if o.src.Recent != nil {
		v := &VerdictStatus{Items: []Verdict{}}
		if items, ok := o.recent(ctx, RecentVerdicts); ok {
			for _, it := range items {
				it.Link = webLink(it.Link)
				v.Items = append(v.Items, it)
			}
		} else {
			v.Error = unavailable
		}
		st.Verdicts = v
	}

	if m := o.extra(); len(m) > 0 {
		st.Extra = m
	}
	return st
}

func (q *QueueStatus) fill(s store.QueueStats) {
	q.Counts = []QueueCount{}
	for _, c := range s.Counts {
		q.Counts = append(q.Counts, QueueCount{Kind: c.Kind, State: c.State, Count: c.Count})
	}
	for _, kind := range queueKinds(s) {
		row := queueRow{Kind: kind, Counts: make([]int64, len(queueStates))}
		for i, state := range queueStates {
			row.Counts[i] = s.Count(kind, state)
		}
		q.rows = append(q.rows, row)
	}
	q.Open = s.Open()
	if !s.OldestOpen.IsZero() {
		q.OldestOpen = s.OldestOpen.UTC()
	}
	q.OldestOpenSeconds = s.OldestOpenAge.Seconds()
	q.Paused, q.PausedReason = s.Pause.Paused, s.Pause.Reason
	if !s.Pause.Since.IsZero() {
		q.PausedSince = s.Pause.Since.UTC()
	}
}

func counts(m map[pair]*tally) []RequestCount {
	out := make([]RequestCount, 0, len(m))
	for k, t := range m {
		out = append(out, RequestCount{Name: k.a, Outcome: k.b, Count: t.n, MeanSeconds: (t.sum / time.Duration(t.n)).Seconds()})
	}
	slices.SortFunc(out, func(a, b RequestCount) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Outcome, b.Outcome))
	})
	return out
}

// webLink keeps http and https links and drops any other, so that the
// page links only to web pages.
func webLink(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return s
}

// Register serves GET /metrics (Prometheus, from the Observer's private
// registry), GET /status (the HTML page) and GET /status.json on mux, and
// the runtime profiles under /debug/pprof/ to loopback clients only
// (RegisterProfiling).
func (o *Observer) Register(mux *http.ServeMux) {
	mux.Handle("GET /metrics", o.metrics)
	mux.HandleFunc("GET /status", o.serveStatus)
	mux.HandleFunc("GET /status.json", o.serveStatusJSON)
	RegisterProfiling(mux, false)
}

// contentSecurityPolicy forbids scripts and every external asset: the
// page needs nothing but its inline styles.
const contentSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (o *Observer) serveStatus(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	if err := statusTemplate().ExecuteTemplate(&buf, "status.html", o.page(o.Status(r.Context()))); err != nil {
		o.log.Error("rendering the status page failed", "error", err)
		http.Error(w, "rendering the status page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(buf.Bytes())
}

func (o *Observer) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	b, err := json.MarshalIndent(o.Status(r.Context()), "", "  ")
	if err != nil {
		o.log.Error("encoding the status failed", "error", err)
		http.Error(w, "encoding the status failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(append(b, '\n'))
}

//go:embed templates/*.html
var templateFS embed.FS

var statusTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"utc":   formatTime,
		"age":   formatAge,
		"num":   formatNumber,
		"share": func(n, percent int) int { return n * percent / 100 },
	}).ParseFS(templateFS, "templates/*.html"))
})

// page is the template's view of a Status.
type page struct {
	Status
	Title    string
	Charts   []chart
	States   []string
	Kinds    []queueRow
	Outcomes []RequestCount // VirusTotal requests by outcome, all endpoints
	Extras   []extraGauge
	Refresh  int
}

type queueRow struct {
	Kind   string
	Counts []int64
}

type extraGauge struct {
	Name  string
	Value float64
}

func (o *Observer) page(st Status) page {
	p := page{Status: st, Title: "vtconnector — " + cmp.Or(st.Name, "daemon"), Charts: st.charts, States: queueStates, Refresh: 30}
	if st.Queue != nil {
		p.Kinds = st.Queue.rows
	}
	by := map[string]int64{}
	for _, r := range st.Requests {
		by[r.Outcome] += r.Count
	}
	for _, out := range slices.Sorted(maps.Keys(by)) {
		p.Outcomes = append(p.Outcomes, RequestCount{Outcome: out, Count: by[out]})
	}
	for _, name := range slices.Sorted(maps.Keys(st.Extra)) {
		p.Extras = append(p.Extras, extraGauge{name, st.Extra[name]})
	}
	return p
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// formatAge writes a duration the way people read ages: 45s, 12m05s,
// 3h07m, 2d04h.
func formatAge(v any) string {
	var d time.Duration
	switch x := v.(type) {
	case time.Duration:
		d = x
	case float64:
		d = time.Duration(x * float64(time.Second))
	default:
		return fmt.Sprint(v)
	}
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// formatNumber writes a gauge without a needless fraction.
func formatNumber(v float64) string {
	return fmt.Sprintf("%g", v)
}
