// Package engine decides whether and when vtconnector calls VirusTotal.
//
// It owns the lookup policy: answer from the cache when the result is
// fresh enough, join concurrent requests for the same object into one
// API call, and send every API call through the quota Scheduler so that a
// key's budget is never exceeded and never wasted. Budgets the
// configuration leaves unset are learned from VirusTotal (Options.Quotas,
// Options.Learn). A 429 that the budget did not foresee lowers the
// per-minute rate for a while; only a day or month that VirusTotal says is
// spent pauses work until it resets. The call is retried: work waits for
// quota, it never fails because of it (unless the caller set a maximum
// wait).
//
// The cache and the quota ledger are interfaces; the in-memory versions
// live here, the durable ones in internal/store. The engine does no I/O
// of its own besides what its API and those interfaces do. It must not
// import the fronts (carbonblack, opencti, cli).
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// API is the part of the VirusTotal client the engine's lookups use.
type API interface {
	File(ctx context.Context, hash string) (*vt.Object, error)
	IPAddress(ctx context.Context, ip string) (*vt.Object, error)
	Domain(ctx context.Context, domain string) (*vt.Object, error)
	URLByID(ctx context.Context, id string) (*vt.Object, error)
}

// Entry is a cached answer: the object's JSON ("data" member) when
// found, or the fact that VirusTotal did not know it.
type Entry struct {
	Kind      vt.Kind
	ID        string
	Found     bool
	Data      json.RawMessage
	FetchedAt time.Time
	// Object is Data decoded, when the cache keeps it (the in-memory
	// cache does; durable caches leave it nil). Callers must not modify it.
	Object *vt.Object
}

// Cache stores answers. Get's bool is false when there is no entry.
type Cache interface {
	Get(ctx context.Context, kind vt.Kind, id string) (Entry, bool, error)
	Put(ctx context.Context, e Entry) error
}

// Options tunes an Engine.
type Options struct {
	// MaxAge is how long a found object is fresh (default 7 days).
	MaxAge time.Duration
	// NotFoundMaxAge is how long "unknown to VirusTotal" is believed
	// (default 1 hour: unknown files get uploaded by others).
	NotFoundMaxAge time.Duration
	// Retries bounds retries of transient errors per call (default 4),
	// with exponential backoff from 2 s. Quota errors are not counted.
	Retries int
	Log     *slog.Logger
	// Events, when set, is told what the engine does (metrics, status
	// page). It is given at construction: nothing is attached later.
	Events Events

	// Submit is the write side of the client (uploads, URL submissions,
	// rescans, analyses). When nil, the API given to New is used if it
	// has those methods too.
	Submit SubmitAPI
	// Uploads is the upload policy every front's uploads go through.
	Uploads UploadPolicy
	// Analysis is how long and how often submissions are waited for.
	Analysis AnalysisPolicy
	// UploadMinRate is the slowest upload accepted, in bytes per second:
	// an upload's deadline is a minute plus its size at this rate
	// (default 128 KiB/s).
	UploadMinRate int64
	// Quotas, when set, reads the key's allowances and use from
	// VirusTotal before the first request, then hourly, and after a 429
	// that the budget did not foresee (at most once a minute). These reads
	// are exempt from the scheduler (see QuotaReadEvery). VirusTotal's
	// count of the day's and month's use is taken into the ledger when it
	// is higher, and a day or month it says is spent pauses every request
	// until it resets. A failing read is logged once; the budget stays.
	Quotas QuotaReader
	// Learn names the budgets the configuration left unset: they are
	// taken from what Quotas reports (the tighter of user and group).
	Learn Learn
	// OneHashOnly: a file report is cached under the hash it was looked
	// up by only, not also under its other hashes. A front that always
	// asks by the same kind of hash (Carbon Black: MD5) keeps one copy of
	// each report in a durable cache instead of three.
	OneHashOnly bool
}

// Events is what the engine reports as it works.
type Events interface {
	// Request: one request was sent to VirusTotal, labelled by its
	// endpoint (CallOptions.Endpoint), with its error and duration.
	Request(endpoint string, err error, d time.Duration)
	// Answered: a lookup was answered without a request of its own,
	// from "cache" or by joining another's request ("shared").
	Answered(from string)
	// UploadRefused: the upload policy refused an upload (the reason is
	// one of the Refused* constants).
	UploadRefused(reason string)
}

// nopEvents is the Events of an engine nobody observes.
type nopEvents struct{}

func (nopEvents) Request(string, error, time.Duration) {}
func (nopEvents) Answered(string)                      {}
func (nopEvents) UploadRefused(string)                 {}

// Engine answers lookups from cache or VirusTotal within the quota.
type Engine struct {
	api   API
	sub   SubmitAPI
	cache Cache
	sched *Scheduler
	opt   Options
	log   *slog.Logger
	sf    singleflight.Group
	// quotas reads VirusTotal's quota figures; nil without Options.Quotas.
	quotas *quotaWatch

	calls, hits, shared, quota429, failures atomic.Int64
}

// New returns an engine. cache may be nil (no caching).
func New(api API, cache Cache, sched *Scheduler, opt Options) *Engine {
	if opt.MaxAge <= 0 {
		opt.MaxAge = 7 * 24 * time.Hour
	}
	if opt.NotFoundMaxAge <= 0 {
		opt.NotFoundMaxAge = time.Hour
	}
	if opt.Retries <= 0 {
		opt.Retries = 4
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Events == nil {
		opt.Events = nopEvents{}
	}
	e := &Engine{api: api, cache: cache, sched: sched, opt: opt, log: opt.Log, sub: opt.Submit,
		quotas: newQuotaWatch(opt.Quotas, opt.Learn, sched, opt.Log)}
	if e.sub == nil {
		e.sub, _ = api.(SubmitAPI)
	}
	return e
}

// Options returns the options the engine runs with (defaults filled in).
func (e *Engine) Options() Options { return e.opt }

// Scheduler returns the engine's quota scheduler.
func (e *Engine) Scheduler() *Scheduler { return e.sched }

// Counters are the engine's running totals.
type Counters struct {
	APICalls  int64 // requests sent to VirusTotal
	CacheHits int64 // lookups answered from the cache
	Shared    int64 // lookups that joined another's API call
	Quota429  int64 // 429 answers received
	Failures  int64 // calls that ended in an error other than not found
}

// Counters returns a snapshot of the running totals.
func (e *Engine) Counters() Counters {
	return Counters{e.calls.Load(), e.hits.Load(), e.shared.Load(), e.quota429.Load(), e.failures.Load()}
}

// CallOptions qualify one paced call.
type CallOptions struct {
	Priority Priority
	// MaxWait bounds the wait for quota; 0 waits as long as it takes.
	MaxWait time.Duration
	// Endpoint labels the request in metrics, e.g. "GET /files/{id}".
	Endpoint string
	// Deadline, when set, bounds each attempt once its slot is granted
	// (the quota wait does not count). An attempt that runs out of time
	// is not retried: the error (vt.ErrDeadlineExceeded) is returned.
	Deadline time.Duration
}

// Do runs one VirusTotal request within the quota: it waits for a slot,
// runs fn, and on a 429 runs fn again when the quota can have refilled
// (see after429). Transient errors are retried with backoff. Errors that
// retrying cannot fix are returned as they are.
func (e *Engine) Do(ctx context.Context, co CallOptions, fn func(ctx context.Context) error) error {
	backoff := 2 * time.Second
	transient := 0
	for {
		e.quotas.maybeRead(ctx, false)
		slot, err := e.sched.Acquire(ctx, co.Priority, co.MaxWait)
		if err != nil {
			return err
		}
		e.calls.Add(1)
		sentAt := time.Now()
		err = e.attempt(ctx, co.Deadline, fn)
		ep := co.Endpoint
		if ep == "" {
			ep = "other"
		}
		e.opt.Events.Request(ep, err, time.Since(sentAt))
		var qe *vt.QuotaError
		switch {
		case err == nil || errors.Is(err, vt.ErrNotFound):
			slot.Done()
			return err
		case errors.As(err, &qe):
			e.quota429.Add(1)
			e.after429(ctx, qe, slot)
			continue
		}
		slot.Done()
		switch {
		case ctx.Err() != nil:
			return err
		case co.Deadline > 0 && errors.Is(err, vt.ErrDeadlineExceeded):
			e.failures.Add(1)
			return err
		case errors.Is(err, vt.ErrTransient) || errors.Is(err, vt.ErrDeadlineExceeded):
			transient++
			if transient > e.opt.Retries {
				e.failures.Add(1)
				return err
			}
			e.log.Warn("VirusTotal request failed; retrying", "error", err, "attempt", transient, "backoff", backoff)
			if err := retry.Sleep(ctx, backoff); err != nil {
				return err
			}
			backoff = retry.Backoff{First: 2 * time.Second, Max: time.Minute}.Next(backoff)
		default:
			e.failures.Add(1)
			return err
		}
	}
}

// attempt runs fn, bounded by deadline when set. A deadline that
// expires is reported as vt.ErrDeadlineExceeded, whatever fn made of it.
func (e *Engine) attempt(ctx context.Context, deadline time.Duration, fn func(ctx context.Context) error) error {
	if deadline <= 0 {
		return fn(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	err := fn(actx)
	if err != nil && ctx.Err() == nil && actx.Err() != nil && !errors.Is(err, vt.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w after %s: %w", vt.ErrDeadlineExceeded, deadline, err)
	}
	return err
}

// Request is one lookup.
type Request struct {
	Kind vt.Kind
	// ID: a hash, an IP address, a domain, or for URLs the URL itself or
	// its VirusTotal identifier.
	ID string
	CallOptions
	// MaxAge overrides the engine's freshness for found objects (e.g. a
	// rescan window); 0 uses the default, < 0 forces a fetch.
	MaxAge time.Duration
}

// Result is a lookup's answer.
type Result struct {
	Kind      vt.Kind
	ID        string     // the normalised id looked up
	Found     bool       // false: VirusTotal does not know the object
	Object    *vt.Object // when Found
	FetchedAt time.Time  // when VirusTotal gave this answer
	Cached    bool       // answered from the cache without a new call
}

// Normalize returns the cache id of a lookup: lower-case hashes and
// domains, canonical IPs, and the unpadded base64url id of a URL.
func Normalize(kind vt.Kind, id string) (string, error) {
	switch kind {
	case vt.KindFile:
		if !vt.IsHash(id) {
			return "", fmt.Errorf("%q is not an MD5, SHA-1 or SHA-256", id)
		}
		return strings.ToLower(id), nil
	case vt.KindIP:
		return vt.NormalizeIP(id)
	case vt.KindDomain:
		return vt.NormalizeDomain(id)
	case vt.KindURL:
		if strings.Contains(id, "://") {
			return vt.URLID(id), nil
		}
		if id == "" {
			return "", errors.New("empty URL")
		}
		return id, nil
	}
	return "", fmt.Errorf("unknown kind %q", kind)
}

// Lookup answers r from the cache when fresh enough, else from
// VirusTotal. Not found is an answer (Found false, nil error).
func (e *Engine) Lookup(ctx context.Context, r Request) (Result, error) {
	id, err := Normalize(r.Kind, r.ID)
	if err != nil {
		return Result{}, fmt.Errorf("engine: lookup %s: %w: %w", r.Kind, vt.ErrBadRequest, err)
	}
	if res, ok := e.fromCache(ctx, r, id); ok {
		e.hits.Add(1)
		e.opt.Events.Answered("cache")
		return res, nil
	}
	for {
		led := false // set only if our own function ran: we did not join another call
		ch := e.sf.DoChan(string(r.Kind)+":"+id, func() (any, error) {
			led = true
			// A caller that waited behind another may find it cached now.
			if res, ok := e.fromCache(ctx, r, id); ok {
				return res, nil
			}
			return e.fetch(ctx, r, id)
		})
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case out := <-ch:
			if out.Err != nil && ctx.Err() == nil && errors.Is(out.Err, context.Canceled) {
				continue // the caller we joined gave up; we have not
			}
			if !led {
				e.shared.Add(1)
				e.opt.Events.Answered("shared")
			}
			if out.Err != nil {
				return Result{}, out.Err
			}
			return out.Val.(Result), nil
		}
	}
}

func (e *Engine) fromCache(ctx context.Context, r Request, id string) (Result, bool) {
	if e.cache == nil || r.MaxAge < 0 {
		return Result{}, false
	}
	ent, ok, err := e.cache.Get(ctx, r.Kind, id)
	if err != nil {
		e.log.Warn("cache read failed; asking VirusTotal", "kind", r.Kind, "id", id, "error", err)
		return Result{}, false
	}
	if !ok {
		return Result{}, false
	}
	maxAge := e.opt.MaxAge
	if r.MaxAge > 0 {
		maxAge = r.MaxAge
	}
	if !ent.Found {
		maxAge = min(maxAge, e.opt.NotFoundMaxAge)
	}
	if time.Since(ent.FetchedAt) > maxAge {
		return Result{}, false
	}
	res := Result{Kind: r.Kind, ID: id, Found: ent.Found, FetchedAt: ent.FetchedAt, Cached: true}
	if ent.Found && ent.Object != nil {
		res.Object = ent.Object
	} else if ent.Found {
		o, err := vt.DecodeObject(ent.Data)
		if err != nil {
			e.log.Warn("cached object unreadable; asking VirusTotal", "kind", r.Kind, "id", id, "error", err)
			return Result{}, false
		}
		res.Object = o
	}
	return res, true
}

// endpoints label the lookups in metrics.
var endpoints = map[vt.Kind]string{
	vt.KindFile: "GET /files/{id}", vt.KindIP: "GET /ip_addresses/{ip}",
	vt.KindDomain: "GET /domains/{domain}", vt.KindURL: "GET /urls/{id}",
}

func (e *Engine) fetch(ctx context.Context, r Request, id string) (Result, error) {
	var obj *vt.Object
	co := r.CallOptions
	if co.Endpoint == "" {
		co.Endpoint = endpoints[r.Kind]
	}
	err := e.Do(ctx, co, func(ctx context.Context) error {
		var err error
		switch r.Kind {
		case vt.KindFile:
			obj, err = e.api.File(ctx, id)
		case vt.KindIP:
			obj, err = e.api.IPAddress(ctx, id)
		case vt.KindDomain:
			obj, err = e.api.Domain(ctx, id)
		case vt.KindURL:
			obj, err = e.api.URLByID(ctx, id)
		}
		return err
	})
	now := time.Now()
	res := Result{Kind: r.Kind, ID: id, FetchedAt: now}
	switch {
	case errors.Is(err, vt.ErrNotFound):
		e.store(ctx, Entry{Kind: r.Kind, ID: id, FetchedAt: now})
		return res, nil
	case err != nil:
		return Result{}, err
	}
	res.Found, res.Object = true, obj
	ent := Entry{Kind: r.Kind, ID: id, Found: true, Data: obj.Raw, FetchedAt: now, Object: obj}
	e.store(ctx, ent)
	if r.Kind == vt.KindFile && !e.opt.OneHashOnly { // reachable by its other hashes too
		for _, h := range []string{obj.Attributes.SHA256, obj.Attributes.SHA1, obj.Attributes.MD5} {
			if h = strings.ToLower(h); vt.IsHash(h) && h != id {
				ent.ID = h
				e.store(ctx, ent)
			}
		}
	}
	if r.Kind == vt.KindURL && vt.IsHash(obj.ID) && obj.ID != id {
		ent.ID = strings.ToLower(obj.ID)
		e.store(ctx, ent)
	}
	return res, nil
}

func (e *Engine) store(ctx context.Context, ent Entry) {
	if e.cache == nil {
		return
	}
	if err := e.cache.Put(ctx, ent); err != nil {
		e.log.Warn("cache write failed", "kind", ent.Kind, "id", ent.ID, "error", err)
	}
}
