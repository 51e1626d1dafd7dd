package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/vt"
)

// QuotaReader reads the key's allowances and use from VirusTotal
// (vt.Client.OverallQuotas).
type QuotaReader interface {
	OverallQuotas(ctx context.Context) (*vt.Quotas, error)
}

// Learn names the budgets that the configuration left unset: the engine
// takes them from VirusTotal's figures (Options.Learn).
type Learn uint8

// The budgets that can be learned. The per-minute one is the hourly
// allowance / 60: VirusTotal reports no per-minute figure.
const (
	LearnPerMinute Learn = 1 << iota
	LearnPerDay
	LearnPerMonth
	LearnAll = LearnPerMinute | LearnPerDay | LearnPerMonth
)

func (l Learn) String() string {
	var parts []string
	for _, w := range []struct {
		bit  Learn
		name string
	}{{LearnPerMinute, "per minute"}, {LearnPerDay, "per day"}, {LearnPerMonth, "per month"}} {
		if l&w.bit != 0 {
			parts = append(parts, w.name)
		}
	}
	return strings.Join(parts, ", ")
}

// Timing of the reads of VirusTotal's quota figures. Reads are exempt
// from the scheduler: they take no slot and wait for none, so that they
// can never deadlock behind the requests they size, and they are few (one
// an hour, plus at most one a minute while 429s come).
const (
	QuotaReadEvery   = time.Hour
	QuotaRereadAfter = time.Minute // after a 429, at the soonest
)

// Budget is the budget a Scheduler enforces and where it came from.
type Budget struct {
	Limits     Limits // in force
	Configured Limits // as configured (a learned window is unset here)
	Learned    Learn  // windows of Limits taken from VirusTotal
	// Reported is VirusTotal's allowances at the last read (ReadAt),
	// zero before any successful read.
	Reported Limits
	ReadAt   time.Time
	// Rate is the per-minute rate in use while a key shared with other
	// clients answers 429s; 0 when it is Limits.PerMinute.
	Rate int
}

// Source says where the budget comes from, for the status page:
// "configured" or "learned from VirusTotal at T (per day, per month)",
// and the lowered rate if any.
func (b Budget) Source() string {
	s := "configured"
	if b.Learned != 0 {
		s = fmt.Sprintf("learned from VirusTotal at %s (%s)", b.ReadAt.UTC().Format(time.RFC3339), b.Learned)
		if b.Learned != LearnAll {
			s += ", the rest configured"
		}
	}
	if b.Rate > 0 {
		s += fmt.Sprintf("; per-minute rate lowered to %d after 429s from a shared key", b.Rate)
	}
	return s
}

// Budget reports the budget in force and where it came from.
func (s *Scheduler) Budget() Budget {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Budget{Limits: s.lim, Configured: s.conf, Learned: s.learned, Reported: s.reported, ReadAt: s.readAt, Rate: s.rate}
}

// SetReported records VirusTotal's allowances read at at (a zero window:
// not reported) and takes the windows in learn from them. It returns the
// limits in force before and after.
func (s *Scheduler) SetReported(reported Limits, learn Learn, at time.Time) (before, after Limits) {
	s.mu.Lock()
	before = s.lim
	s.reported, s.readAt = reported, at
	lim, learned := s.conf, Learn(0)
	if learn&LearnPerMinute != 0 && reported.PerMinute > 0 {
		lim.PerMinute, learned = reported.PerMinute, learned|LearnPerMinute
		if lim.PerMinute > MaxMinuteSlots {
			lim.PerMinute = 0 // not paced per minute (see MaxMinuteSlots)
		}
	}
	if learn&LearnPerDay != 0 && reported.PerDay > 0 {
		lim.PerDay, learned = reported.PerDay, learned|LearnPerDay
	}
	if learn&LearnPerMonth != 0 && reported.PerMonth > 0 {
		lim.PerMonth, learned = reported.PerMonth, learned|LearnPerMonth
	}
	s.lim, s.learned = lim, learned
	after = lim
	s.mu.Unlock()
	s.pump()
	return before, after
}

// SeedUsage raises the ledger's day and month counters to what VirusTotal
// counts, when the ledger can (UsageSeeder) and VirusTotal counts more.
func (s *Scheduler) SeedUsage(ctx context.Context, now time.Time, dayUsed, monthUsed int64) error {
	sd, ok := s.ledger.(UsageSeeder)
	if !ok {
		return nil
	}
	return sd.SeedUsage(ctx, now, dayUsed, monthUsed)
}

// quotaWatch reads VirusTotal's quota figures for an Engine: at its first
// request, then hourly, and after a 429 (at most once a minute).
type quotaWatch struct {
	r     QuotaReader
	learn Learn
	sched *Scheduler
	log   *slog.Logger

	reading sync.Mutex // held during a read: one at a time

	mu      sync.Mutex
	lastTry time.Time
	readAt  time.Time // the last successful read
	daily   vt.Quota  // effective allowances at the last read
	monthly vt.Quota
	failing bool // the last read failed and was logged
}

func newQuotaWatch(r QuotaReader, learn Learn, sched *Scheduler, log *slog.Logger) *quotaWatch {
	if r == nil {
		return nil
	}
	return &quotaWatch{r: r, learn: learn, sched: sched, log: log}
}

// due reports whether a read should start at now.
func (w *quotaWatch) due(now time.Time, after429 bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	since := now.Sub(w.lastTry)
	return w.lastTry.IsZero() || since >= QuotaReadEvery || after429 && since >= QuotaRereadAfter
}

// maybeRead reads the figures when a read is due and none is running;
// otherwise it returns at once. It is safe on a nil watch.
func (w *quotaWatch) maybeRead(ctx context.Context, after429 bool) {
	if w == nil || !w.due(time.Now(), after429) || !w.reading.TryLock() {
		return
	}
	defer w.reading.Unlock()
	now := time.Now()
	if !w.due(now, after429) { // another read just ended
		return
	}
	w.mu.Lock()
	w.lastTry = now
	w.mu.Unlock()
	q, err := w.r.OverallQuotas(ctx)
	if err != nil {
		w.failed(ctx, err)
		return
	}
	w.apply(ctx, q, time.Now())
}

func (w *quotaWatch) failed(ctx context.Context, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ctx.Err() != nil { // our caller gave up: not VirusTotal's failure
		w.lastTry = time.Time{}
		return
	}
	if w.failing {
		w.log.Debug("reading the VirusTotal quota failed again", "error", err)
		return
	}
	w.failing = true
	w.log.Warn("reading the VirusTotal quota failed; the configured budget stays", "error", err, "retry_in", QuotaReadEvery)
}

// apply takes a read: learns the unset budgets, seeds the ledger's use,
// and pauses until the next UTC day or month when VirusTotal says that
// one is spent.
func (w *quotaWatch) apply(ctx context.Context, q *vt.Quotas, now time.Time) {
	var rep Limits
	hourly, hok := q.Hourly.Effective()
	if hok {
		rep.PerMinute = clampInt(max(1, hourly.Allowed/60))
	}
	daily, dok := q.Daily.Effective()
	if dok {
		rep.PerDay = clampInt(daily.Allowed)
	}
	monthly, mok := q.Monthly.Effective()
	if mok {
		rep.PerMonth = clampInt(monthly.Allowed)
	}
	w.mu.Lock()
	w.failing = false
	w.readAt, w.daily, w.monthly = now, daily, monthly
	w.mu.Unlock()

	before, after := w.sched.SetReported(rep, w.learn, now)
	for _, c := range []struct {
		name          string
		before, after int
	}{{"per-minute", before.PerMinute, after.PerMinute}, {"daily", before.PerDay, after.PerDay}, {"monthly", before.PerMonth, after.PerMonth}} {
		if c.before != c.after {
			w.log.Info(fmt.Sprintf("%s budget %d taken from VirusTotal", c.name, c.after), "window", c.name, "budget", c.after, "was", c.before)
		}
	}
	if err := w.sched.SeedUsage(ctx, now, daily.Used, monthly.Used); err != nil {
		w.log.Warn("could not record VirusTotal's count of the key's use", "error", err)
	}
	switch {
	case mok && monthly.Spent():
		w.sched.PauseUntil(NextMonth(now), WindowMonth)
	case dok && daily.Spent():
		w.sched.PauseUntil(NextDay(now), WindowDay)
	}
}

// spent returns the end of the pause that the last read calls for at now:
// the next UTC day or month when VirusTotal said that one was spent.
func (w *quotaWatch) spent(now time.Time) (until time.Time, window string) {
	if w == nil {
		return time.Time{}, ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	read := w.readAt
	switch {
	case w.monthly.Spent() && NextMonth(read).After(now):
		return NextMonth(now), WindowMonth
	case w.daily.Spent() && NextDay(read).After(now):
		return NextDay(now), WindowDay
	}
	return time.Time{}, ""
}

func clampInt(n int64) int { return int(min(n, math.MaxInt32)) }

// after429 handles a 429 answer to the request of slot, then settles the
// slot. A named wait (Retry-After) pauses every caller that long; a day or
// month that VirusTotal said was spent pauses until it resets; any other
// 429 lowers the per-minute rate, and the figures are read again (at most
// once a minute) in case the day or month is spent after all.
func (e *Engine) after429(ctx context.Context, qe *vt.QuotaError, slot *Slot) {
	now := time.Now()
	if qe.RetryAfter > 0 {
		e.sched.PauseUntil(now.Add(qe.RetryAfter), WindowCooldown)
		slot.Done()
		return
	}
	if until, window := e.quotas.spent(now); !until.IsZero() {
		e.sched.PauseUntil(until, window)
		slot.Done()
		return
	}
	e.sched.Refused(now)
	slot.Done()
	e.quotas.maybeRead(ctx, true)
}
