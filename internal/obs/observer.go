package obs

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// Sources is what an Observer reads when it is scraped or asked for the
// status page. Every field but Name may be left zero; what is missing is
// not reported.
type Sources struct {
	// Name is the daemon: "carbonblack" or "opencti". It is the page's
	// title and the value of the "front" label on every metric.
	Name string
	// Engine supplies the engine's running totals.
	Engine interface{ Counters() engine.Counters }
	// Limits is the key's budget. A zero window is unlimited.
	Limits engine.Limits
	// Budget, when set, reports the budget in force and where it came
	// from (engine.Scheduler.Budget); its Limits then replace Limits.
	Budget func() engine.Budget
	// Quota reports the ledger's use at now: store.QuotaUsage bound to the
	// key id, or a MemLedger's Usage.
	Quota func(ctx context.Context, now time.Time) (engine.Usage, error)
	// Queue reports the work queue (store.Stats).
	Queue func(ctx context.Context) (store.QueueStats, error)
	// Recent returns up to n recent verdicts, newest first, for the page.
	Recent func(ctx context.Context, n int) ([]Verdict, error)
	// Waiting reports how many callers wait for a quota slot
	// (engine.Scheduler.Waiting).
	Waiting func() (interactive, backlog int)
	// Extra returns front-specific gauges, e.g. "feed_reports"; each is
	// exported as vtconnector_<name>. Names must match [a-z_][a-z0-9_]*
	// and not be one of the package's own metrics; others are skipped.
	Extra func() map[string]float64
	// Clock is the time source; nil means time.Now. Tests fix it.
	Clock func() time.Time
	// Timeout bounds each call to Quota, Queue and Recent; zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout bounds each read of a source during a scrape or a page
// view: a slow database must not hold a scrape past Prometheus's own
// timeout.
const DefaultTimeout = 2 * time.Second

// Verdict is one recent answer shown on the status page. The fronts fill
// it from their own types.
type Verdict struct {
	Kind      string    `json:"kind"`            // e.g. "file", "url", "ipv4-addr"
	ID        string    `json:"id"`              // what was looked up: hash, URL, address
	Label     string    `json:"label,omitempty"` // VirusTotal's threat label, if any
	Malicious int       `json:"malicious"`       // engines that flag it malicious
	Total     int       `json:"total"`           // engines that gave a verdict
	Link      string    `json:"link,omitempty"`  // the VirusTotal GUI page
	At        time.Time `json:"at"`              // when the verdict was made
}

// Outcomes of a VirusTotal request, the outcome label of
// vtconnector_vt_requests_total. VTOutcome maps a client error to one.
const (
	OutcomeOK         = "ok"
	OutcomeNotFound   = "not_found"
	OutcomeQuota      = "quota"
	OutcomeAuth       = "auth"
	OutcomeTransient  = "transient"
	OutcomeBadRequest = "bad_request"
	OutcomeError      = "error"
)

var vtOutcomes = []string{OutcomeOK, OutcomeNotFound, OutcomeQuota, OutcomeAuth, OutcomeTransient, OutcomeBadRequest, OutcomeError}

// VTOutcome classifies the error of a VirusTotal client call: nil is
// "ok", and each vt sentinel maps to its class.
func VTOutcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, vt.ErrNotFound):
		return OutcomeNotFound
	case errors.Is(err, vt.ErrQuota):
		return OutcomeQuota
	case errors.Is(err, vt.ErrAuth), errors.Is(err, vt.ErrForbidden):
		return OutcomeAuth
	case errors.Is(err, vt.ErrTransient), errors.Is(err, vt.ErrDeadlineExceeded), errors.Is(err, vt.ErrNotAvailableYet):
		return OutcomeTransient
	case errors.Is(err, vt.ErrBadRequest), errors.Is(err, vt.ErrTooLarge), errors.Is(err, vt.ErrAlreadyExists):
		return OutcomeBadRequest
	default:
		return OutcomeError
	}
}

// Keys of the problems the daemons raise. Any other key works too; these
// name the ones the page's readers will see most.
const (
	ProblemVTAuth                 = "virustotal_auth"
	ProblemCarbonBlackUnreachable = "carbonblack_unreachable"
	ProblemPlatformUnreachable    = "platform_unreachable"
)

// maxMessage bounds a problem's message, so that a huge error cannot
// flood the page.
const maxMessage = 500

// Problem is a condition that needs a person's attention.
type Problem struct {
	Key      string    `json:"key"`
	Message  string    `json:"message"`
	Since    time.Time `json:"since"`     // when it was first raised
	LastSeen time.Time `json:"last_seen"` // when it was last raised or refreshed
}

// Observer collects a daemon's metrics and serves its status page. Its
// event methods are safe for concurrent use and cheap enough for every
// request.
type Observer struct {
	src     Sources
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration

	reg            *prometheus.Registry
	vtRequests     *prometheus.CounterVec
	vtDuration     *prometheus.HistogramVec
	enrichments    *prometheus.CounterVec
	enrichDuration *prometheus.HistogramVec
	uploadsRefused *prometheus.CounterVec
	tally          engineTally

	mu       sync.Mutex
	requests map[pair]*tally // VirusTotal requests by endpoint and outcome
	enriched map[pair]*tally // enrichments by entity type and outcome
	problems map[string]*Problem
	notes    map[string]string // key -> message: facts worth showing, not problems
	refused  map[string]int64  // uploads refused by reason
	seen     map[string]bool   // problem keys ever raised: their gauge stays, at 0, once resolved
	badExtra map[string]bool   // Extra gauge names already logged as unusable
	history  ring              // quota samples of the last HistoryWindow

	health  map[string]*sourceHealth
	metrics http.Handler

	queueMemo memo[store.QueueStats]
}

type pair struct{ a, b string }

type tally struct {
	n   int64
	sum time.Duration
}

// New returns an Observer of src that logs to log (nil: discard).
func New(src Sources, log *slog.Logger) *Observer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Observer{
		src:      src,
		log:      log.With("component", "obs"),
		now:      src.Clock,
		timeout:  cmp.Or(src.Timeout, DefaultTimeout),
		requests: map[pair]*tally{},
		enriched: map[pair]*tally{},
		problems: map[string]*Problem{},
		notes:    map[string]string{},
		refused:  map[string]int64{},
		seen:     map[string]bool{},
		badExtra: map[string]bool{},
		history:  newRing(historyLen),
		health:   map[string]*sourceHealth{},
	}
	for _, s := range []string{sourceQuota, sourceQueue, sourceRecent} {
		o.health[s] = &sourceHealth{}
	}
	if o.now == nil {
		o.now = time.Now
	}
	o.initMetrics()
	return o
}

// Registry is the Observer's private registry, for a daemon that wants to
// add metrics of its own.
func (o *Observer) Registry() *prometheus.Registry { return o.reg }

// VTRequest records one request to VirusTotal: the endpoint (a fixed name
// such as "files", "urls", "ip_addresses", "domains", "analyses",
// "upload" — never the object's id), its outcome (one of the Outcome
// constants; anything else counts as "error") and how long it took.
func (o *Observer) VTRequest(endpoint, outcome string, d time.Duration) {
	if !slices.Contains(vtOutcomes, outcome) {
		outcome = OutcomeError
	}
	o.vtRequests.WithLabelValues(endpoint, outcome).Inc()
	o.vtDuration.WithLabelValues(endpoint).Observe(d.Seconds())
	o.mu.Lock()
	add(o.requests, pair{endpoint, outcome}, d)
	o.mu.Unlock()
}

// Enrichment records one OpenCTI enrichment of an entity type (e.g.
// "StixFile", "IPv4-Addr") with its outcome (e.g. "ok", "not_found",
// "skipped_tlp", "error") and how long it took.
func (o *Observer) Enrichment(entityType, outcome string, d time.Duration) {
	o.enrichments.WithLabelValues(entityType, outcome).Inc()
	o.enrichDuration.WithLabelValues(entityType).Observe(d.Seconds())
	o.mu.Lock()
	add(o.enriched, pair{entityType, outcome}, d)
	o.mu.Unlock()
}

func add(m map[pair]*tally, k pair, d time.Duration) {
	t := m[k]
	if t == nil {
		t = &tally{}
		m[k] = t
	}
	t.n++
	t.sum += d
}

// Problem raises a problem that needs attention under key, or refreshes
// it with a new message. The message is shown on the page as it is: it
// must not hold secrets (config.Secret values print as [redacted]).
func (o *Observer) Problem(key, message string) {
	message = truncate(message, maxMessage)
	now := o.now()
	o.mu.Lock()
	p, ok := o.problems[key]
	if !ok {
		p = &Problem{Key: key, Since: now}
		o.problems[key] = p
		o.seen[key] = true
	}
	changed := p.Message != message
	p.Message, p.LastSeen = message, now
	o.mu.Unlock()
	if !ok || changed {
		o.log.Warn("problem needs attention", "problem", key, "message", message)
	}
}

// Resolve clears the problem under key, if any.
func (o *Observer) Resolve(key string) {
	o.mu.Lock()
	p, ok := o.problems[key]
	delete(o.problems, key)
	o.mu.Unlock()
	if ok {
		o.log.Info("problem resolved", "problem", key, "lasted", o.now().Sub(p.Since).Round(time.Second))
	}
}

// Note is a fact the status page shows under its key (e.g. what the
// import of an earlier tool's state did): not a problem, no metric.
type Note struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

// Note shows message under key on the status page, replacing the
// previous note of that key; an empty message removes it. Like a
// problem's, the message must not hold secrets.
func (o *Observer) Note(key, message string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if message == "" {
		delete(o.notes, key)
		return
	}
	o.notes[key] = truncate(message, maxMessage)
}

// Notes returns the notes in key order.
func (o *Observer) Notes() []Note {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Note, 0, len(o.notes))
	for k, m := range o.notes {
		out = append(out, Note{Key: k, Message: m})
	}
	slices.SortFunc(out, func(a, b Note) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// Problems returns the open problems, oldest first.
func (o *Observer) Problems() []Problem {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Problem, 0, len(o.problems))
	for _, p := range o.problems {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Problem) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Key, b.Key))
	})
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n-- // do not cut a character in two
	}
	return s[:n] + "…"
}

// Names of the sources, as logged and as the source label of
// vtconnector_source_up.
const (
	sourceQuota  = "quota"
	sourceQueue  = "queue"
	sourceRecent = "recent"
)

// sourceHealth remembers whether a source failed last time, so that a
// failing source is logged when it starts and stops failing, not at
// every scrape.
type sourceHealth struct {
	mu     sync.Mutex
	failed bool
}

// report logs a change of the source's health and returns err == nil.
// A read cut short because ctx ended (a shutdown, a client gone) says
// nothing about the source and is not logged.
func (o *Observer) report(ctx context.Context, source string, err error) bool {
	if err != nil && ctx.Err() != nil {
		return false
	}
	h := o.health[source]
	h.mu.Lock()
	was := h.failed
	h.failed = err != nil
	h.mu.Unlock()
	switch {
	case err != nil && !was:
		o.log.Warn("status source failed; its values are skipped", "source", source, "error", err)
	case err != nil:
		o.log.Debug("status source still failing", "source", source, "error", err)
	case was:
		o.log.Info("status source recovered", "source", source)
	}
	return err == nil
}

// quota reads the Quota source, if any, with the source timeout.
func (o *Observer) quota(ctx context.Context, now time.Time) (engine.Usage, bool) {
	if o.src.Quota == nil {
		return engine.Usage{}, false
	}
	tctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	u, err := o.src.Quota(tctx, now)
	return u, o.report(ctx, sourceQuota, err)
}

// queue reads the Queue source, if any, with the source timeout.
func (o *Observer) queue(ctx context.Context) (store.QueueStats, bool) {
	if o.src.Queue == nil {
		return store.QueueStats{}, false
	}
	q, err := o.queueMemo.get(func() (store.QueueStats, error) {
		tctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		return o.src.Queue(tctx)
	})
	return q, o.report(ctx, sourceQueue, err)
}

// recent reads the Recent source, if any, with the source timeout.
func (o *Observer) recent(ctx context.Context, n int) ([]Verdict, bool) {
	if o.src.Recent == nil {
		return nil, false
	}
	tctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	v, err := o.src.Recent(tctx, n)
	if len(v) > n {
		v = v[:n]
	}
	return v, o.report(ctx, sourceRecent, err)
}
