package obs

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
)

// namespace prefixes every metric of the package.
const namespace = "vtconnector"

// Buckets of the latency histograms, in seconds. A VirusTotal request
// takes from tens of milliseconds (a hash lookup) to minutes (a large
// upload); an enrichment includes the wait for a quota slot, which on a
// public key can be minutes.
var (
	vtBuckets     = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
	enrichBuckets = []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
)

// queueStates are the states queue_items reports for every kind it sees,
// so that a state that empties reads 0 instead of vanishing.
var queueStates = []string{
	store.StateQueued, store.StatePending, store.StateRetry, store.StateLeased,
	store.StateDone, store.StateNotFound, store.StateFailed,
}

// descs are the metrics read from the sources at scrape time.
type descs struct {
	apiCalls, cacheHits, shared, quota429, failures *prometheus.Desc

	quotaUsed, quotaLimit, quotaRemaining, quotaPaused *prometheus.Desc
	waiting                                            *prometheus.Desc

	queueItems, queueOldest, queuePaused *prometheus.Desc

	problems, sourceUp *prometheus.Desc
}

// ownNames are the names (after the namespace) of the package's metrics;
// an Extra gauge may not take one.
var ownNames = []string{
	"engine_api_calls_total", "cache_hits_total", "lookups_shared_total", "vt_429_total", "engine_failures_total",
	"vt_quota_used", "vt_quota_limit", "vt_quota_remaining", "vt_quota_paused", "vt_waiting",
	"queue_items", "queue_oldest_open_seconds", "queue_paused",
	"problems", "source_up",
	"vt_requests_total", "vt_request_duration_seconds", "enrichments_total", "enrichment_duration_seconds",
	"uploads_refused_total",
}

func newDescs() descs {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return descs{
		apiCalls:  d("engine_api_calls_total", "Requests the engine sent to VirusTotal."),
		cacheHits: d("cache_hits_total", "Lookups answered from the cache without calling VirusTotal."),
		shared:    d("lookups_shared_total", "Lookups that joined a concurrent lookup of the same object instead of calling VirusTotal."),
		quota429:  d("vt_429_total", "429 (quota exceeded) answers from VirusTotal."),
		failures:  d("engine_failures_total", "VirusTotal calls that ended in an error other than not found."),

		quotaUsed:      d("vt_quota_used", "VirusTotal requests used in the current window (minute: slots in use).", "window"),
		quotaLimit:     d("vt_quota_limit", "VirusTotal request budget of the window; absent when unlimited.", "window"),
		quotaRemaining: d("vt_quota_remaining", "VirusTotal requests left in the window; absent when unlimited.", "window"),
		quotaPaused:    d("vt_quota_paused", "1 while every VirusTotal call is paused after a 429, else 0."),
		waiting:        d("vt_waiting", "Callers waiting for a quota slot, by priority.", "priority"),

		queueItems:  d("queue_items", "Work items by kind and state.", "kind", "state"),
		queueOldest: d("queue_oldest_open_seconds", "Age of the oldest unfinished work item; 0 when none."),
		queuePaused: d("queue_paused", "1 while the work queue is paused, else 0."),

		problems: d("problems", "1 while the problem is open, 0 once resolved.", "key"),
		sourceUp: d("source_up", "1 when the last read of the status source succeeded, else 0.", "source"),
	}
}

// initMetrics builds the private registry: the event vectors, the
// scrape-time collector, the Go and process collectors, and the /metrics
// handler.
func (o *Observer) initMetrics() {
	o.reg = prometheus.NewRegistry()
	o.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	var r prometheus.Registerer = o.reg
	if o.src.Name != "" {
		r = prometheus.WrapRegistererWith(prometheus.Labels{"front": o.src.Name}, o.reg)
	}
	o.vtRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "vt_requests_total",
		Help: "Requests to VirusTotal by endpoint and outcome (ok, not_found, quota, auth, transient, bad_request, error).",
	}, []string{"endpoint", "outcome"})
	o.vtDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "vt_request_duration_seconds",
		Help: "Duration of requests to VirusTotal by endpoint.", Buckets: vtBuckets,
	}, []string{"endpoint"})
	o.enrichments = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "enrichments_total",
		Help: "OpenCTI enrichments by entity type and outcome.",
	}, []string{"type", "outcome"})
	o.enrichDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "enrichment_duration_seconds",
		Help: "Duration of OpenCTI enrichments by entity type, waiting for quota included.", Buckets: enrichBuckets,
	}, []string{"type"})
	o.uploadsRefused = newRefusedCounter()
	r.MustRegister(o.vtRequests, o.vtDuration, o.enrichments, o.enrichDuration, o.uploadsRefused, &sourceCollector{o: o, d: newDescs()})

	o.metrics = promhttp.InstrumentMetricHandler(o.reg, promhttp.HandlerFor(o.reg, promhttp.HandlerOpts{
		ErrorLog:      errorLog{o.log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      o.reg,
	}))
}

// errorLog adapts the logger to promhttp's error log.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Println(v ...any) { l.log.Error("serving metrics", "error", fmt.Sprint(v...)) }

// sourceCollector reads the sources at scrape time. It is unchecked (it
// describes nothing) because the queue's kinds and the Extra gauges are
// known only when read.
type sourceCollector struct {
	o *Observer
	d descs
}

// Describe implements prometheus.Collector.
func (c *sourceCollector) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	o, d := c.o, &c.d
	now := o.now()
	// A scrape has no context of its own; each source read is bounded by
	// the source timeout instead.
	ctx := context.Background()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v))
	}

	e := o.engineCounters()
	counter(d.apiCalls, e.APICalls)
	counter(d.cacheHits, e.CacheHits)
	counter(d.shared, e.Shared)
	counter(d.quota429, e.Quota429)
	counter(d.failures, e.Failures)

	if o.src.Quota != nil {
		u, ok := o.quota(ctx, now)
		gauge(d.sourceUp, b2f(ok), sourceQuota)
		if ok {
			for _, w := range windows(u, o.limits()) {
				gauge(d.quotaUsed, float64(w.Used), w.Window)
				if w.Limit > 0 {
					gauge(d.quotaLimit, float64(w.Limit), w.Window)
					gauge(d.quotaRemaining, float64(w.Remaining), w.Window)
				}
			}
			gauge(d.quotaPaused, b2f(u.PausedUntil.After(now)))
		}
	}
	if o.src.Waiting != nil {
		interactive, backlog := o.src.Waiting()
		gauge(d.waiting, float64(interactive), "interactive")
		gauge(d.waiting, float64(backlog), "backlog")
	}

	if o.src.Queue != nil {
		q, ok := o.queue(ctx)
		gauge(d.sourceUp, b2f(ok), sourceQueue)
		if ok {
			for _, kind := range queueKinds(q) {
				for _, state := range queueStates {
					gauge(d.queueItems, float64(q.Count(kind, state)), kind, state)
				}
			}
			gauge(d.queueOldest, q.OldestOpenAge.Seconds())
			gauge(d.queuePaused, b2f(q.Pause.Paused))
		}
	}

	o.mu.Lock()
	for key := range o.seen {
		_, open := o.problems[key]
		gauge(d.problems, b2f(open), key)
	}
	o.mu.Unlock()

	for name, v := range o.extra() {
		gauge(prometheus.NewDesc(namespace+"_"+name, "Front-specific gauge "+name+".", nil, nil), v)
	}
}

// extraName is what an Extra gauge's name must look like.
var extraName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// extra reads the Extra gauges, dropping (and logging once) those whose
// name is unusable or taken by one of the package's metrics.
func (o *Observer) extra() map[string]float64 {
	if o.src.Extra == nil {
		return nil
	}
	m := map[string]float64{} // a copy: the source may hand out its own map
	for name, v := range o.src.Extra() {
		if extraName.MatchString(name) && !slices.Contains(ownNames, name) {
			m[name] = v
			continue
		}
		o.mu.Lock()
		logged := o.badExtra[name]
		o.badExtra[name] = true
		o.mu.Unlock()
		if !logged {
			o.log.Warn("extra gauge skipped: its name is not a valid metric name or is taken", "gauge", name)
		}
	}
	return m
}

// queueKinds lists the kinds in q, sorted.
func queueKinds(q store.QueueStats) []string {
	var kinds []string
	for _, c := range q.Counts {
		if !slices.Contains(kinds, c.Kind) {
			kinds = append(kinds, c.Kind)
		}
	}
	slices.Sort(kinds)
	return kinds
}

// Window is one quota window's use against its budget.
type Window struct {
	Window    string `json:"window"` // minute, day or month
	Used      int    `json:"used"`
	Limit     int    `json:"limit"`     // 0: unlimited
	Remaining int    `json:"remaining"` // 0 when unlimited or used up
	Percent   int    `json:"percent"`   // Used of Limit, 0–100; 0 when unlimited
}

// limits is the budget in force: the Budget source's when set.
func (o *Observer) limits() engine.Limits {
	if o.src.Budget != nil {
		return o.src.Budget().Limits
	}
	return o.src.Limits
}

func windows(u engine.Usage, lim engine.Limits) []Window {
	w := func(name string, used, limit int) Window {
		x := Window{Window: name, Used: used, Limit: limit}
		if limit > 0 {
			x.Remaining = max(limit-used, 0)
			x.Percent = min(100*used/limit, 100)
		}
		return x
	}
	return []Window{
		w(engine.WindowMinute, u.MinuteInUse, lim.PerMinute),
		w(engine.WindowDay, u.DayUsed, lim.PerDay),
		w(engine.WindowMonth, u.MonthUsed, lim.PerMonth),
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
