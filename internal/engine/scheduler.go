package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Priority orders waiting requests: every Interactive request is served
// before any Backlog one.
type Priority int

// Priorities.
const (
	Interactive Priority = iota // a person or a platform is waiting (CLI, OpenCTI)
	Backlog                     // bulk work (Carbon Black historical collection)
)

func (p Priority) String() string {
	if p == Interactive {
		return "interactive"
	}
	return "backlog"
}

// QuotaExhaustedError is returned by Acquire when the next free slot is
// further away than the caller agreed to wait. Nothing was sent.
type QuotaExhaustedError struct {
	Window  string    // which budget is spent: minute, day, month or cooldown
	ResetAt time.Time // when a request can be sent again
}

func (e *QuotaExhaustedError) Error() string {
	return fmt.Sprintf("VirusTotal %s quota used up until %s", e.Window, e.ResetAt.UTC().Format(time.RFC3339))
}

// Scheduler hands out request slots within a key's budget. Callers wait in
// two FIFO queues; when the ledger grants a slot it goes to the oldest
// interactive waiter, else to the oldest backlog waiter. No waiter fails
// because of quota unless it set a maximum wait.
//
// The budget in force is the configured one, where the configuration set
// it, and otherwise what VirusTotal reported (SetReported). After a 429
// that the budget did not foresee (another client shares the key) the
// per-minute rate in use is lowered (Refused) and raised back after clean
// windows; only a day or month that VirusTotal says is spent pauses work
// for long (PauseUntil).
type Scheduler struct {
	ledger Ledger
	conf   Limits
	hold   time.Duration
	log    *slog.Logger

	mu      sync.Mutex
	queues  [2][]*waiter
	pumping bool
	again   bool
	timer   *time.Timer
	timerAt time.Time

	lim      Limits    // in force: conf, with learned windows replaced
	learned  Learn     // the windows of lim taken from VirusTotal
	reported Limits    // VirusTotal's allowances at the last read
	readAt   time.Time // the last read of VirusTotal's allowances

	// pauseEnd and pauseWindow name the current pause, so that a waiter
	// refused by it learns which budget is spent.
	pauseEnd    time.Time
	pauseWindow string

	// The per-minute rate in use while a shared key answers 429s: 0 means
	// lim.PerMinute. ceiling is what it climbs back to when lim.PerMinute
	// is unlimited: the rate observed at the first cut.
	rate, ceiling               int
	lastCut, last429, lastRaise time.Time
	// cleanSince is the first grant after the last 429 (zero: none yet).
	cleanSince time.Time
	// Per second over the last minute: grants, answers and 429s.
	sent, answered, refusals sentCounter
	firstSent                time.Time // the first grant: how much of the last minute the counters cover
}

type waiter struct {
	ready   chan grantResult
	maxWait time.Duration
	done    bool
}

type grantResult struct {
	ticket int64
	err    error
}

// NewScheduler returns a scheduler over ledger with budget lim. hold is
// the longest a request may stay in flight (see Ledger.Take).
func NewScheduler(ledger Ledger, lim Limits, hold time.Duration, log *slog.Logger) *Scheduler {
	if hold <= 0 {
		hold = 5 * time.Minute
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if lim.PerMinute > MaxMinuteSlots {
		log.Info("per-minute budget above what is paced slot by slot: not limited per minute (the daily and monthly budgets still are)",
			"per_minute", lim.PerMinute, "max_paced", MaxMinuteSlots)
		lim.PerMinute = 0
	}
	return &Scheduler{ledger: ledger, conf: lim, lim: lim, hold: hold, log: log}
}

// MaxMinuteSlots is the largest per-minute budget the scheduler paces
// slot by slot (a durable ledger keeps one row per slot). A larger budget,
// configured or reported by VirusTotal (whose "unlimited" is a very large
// number), is not limited per minute; the daily and monthly budgets are.
const MaxMinuteSlots = 10_000

// Limits returns the budget in force: configured, or learned from
// VirusTotal where the configuration left it unset. The per-minute rate
// actually used may be lower for a while after 429s (see Budget).
func (s *Scheduler) Limits() Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lim
}

// Slot is one granted request. Done must be called once the answer has
// arrived (or the request was abandoned).
type Slot struct {
	s      *Scheduler
	ticket int64
	once   sync.Once
}

// Done settles the slot at the current time. Callers report a 429 with
// Cooldown (or Refused, PauseUntil) before calling Done.
func (sl *Slot) Done() {
	sl.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		now := time.Now()
		if err := sl.s.ledger.Settle(ctx, sl.ticket, now); err != nil {
			sl.s.log.Warn("quota settle failed", "error", err)
		}
		sl.s.mu.Lock()
		sl.s.answered.add(now)
		sl.s.mu.Unlock()
		sl.s.pump()
	})
}

// Acquire waits for a request slot. maxWait ≤ 0 waits as long as it
// takes; otherwise, when the next slot is further away than maxWait, it
// returns a *QuotaExhaustedError at once instead of waiting.
func (s *Scheduler) Acquire(ctx context.Context, p Priority, maxWait time.Duration) (*Slot, error) {
	if p != Interactive {
		p = Backlog
	}
	w := &waiter{ready: make(chan grantResult, 1), maxWait: maxWait}
	s.mu.Lock()
	s.queues[p] = append(s.queues[p], w)
	s.mu.Unlock()
	s.pump()
	select {
	case r := <-w.ready:
		if r.err != nil {
			return nil, r.err
		}
		return &Slot{s: s, ticket: r.ticket}, nil
	case <-ctx.Done():
		s.mu.Lock()
		if !w.done {
			w.done = true
			s.remove(p, w)
			s.mu.Unlock()
			return nil, ctx.Err()
		}
		s.mu.Unlock()
		// granted meanwhile: give the slot back as used.
		if r := <-w.ready; r.err == nil {
			(&Slot{s: s, ticket: r.ticket}).Done()
		}
		return nil, ctx.Err()
	}
}

func (s *Scheduler) remove(p Priority, w *waiter) {
	q := s.queues[p]
	for i, x := range q {
		if x == w {
			s.queues[p] = append(q[:i:i], q[i+1:]...)
			return
		}
	}
}

func (s *Scheduler) head() (*waiter, Priority) {
	for p := range s.queues {
		if len(s.queues[p]) > 0 {
			return s.queues[p][0], Priority(p)
		}
	}
	return nil, 0
}

// pump grants slots to waiters while the ledger has room, then arms a
// timer for the next time it may. Only one pump runs at a time; a call
// made while one runs makes it loop once more.
func (s *Scheduler) pump() {
	s.mu.Lock()
	if s.pumping {
		s.again = true
		s.mu.Unlock()
		return
	}
	s.pumping = true
	for {
		s.again = false
		w, p := s.head()
		if w == nil {
			break
		}
		now := time.Now()
		lim := s.limitsLocked(now)
		if s.rate > 0 && s.sent.inLast(now) >= s.rate {
			// A lowered rate also holds against what this process sent
			// before the cut, which an unlimited ledger did not count.
			s.armLocked(s.sent.nextBelow(now, s.rate), now)
			break
		}
		s.mu.Unlock()
		g, err := s.ledger.Take(context.Background(), now, lim, s.hold)
		s.mu.Lock()
		if err != nil {
			s.log.Error("quota ledger unavailable; requests wait", "error", err)
			g = Grant{RetryAt: now.Add(time.Second), Window: "ledger"}
		}
		if g.OK {
			if w.done { // left while we asked: keep the slot for the next one
				s.mu.Unlock()
				_ = s.ledger.Settle(context.Background(), g.Ticket, now)
				s.mu.Lock()
				continue
			}
			w.done = true
			s.queues[p] = s.queues[p][1:]
			s.sent.add(now)
			if s.firstSent.IsZero() {
				s.firstSent = now
			}
			if s.cleanSince.IsZero() {
				s.cleanSince = now
			}
			w.ready <- grantResult{ticket: g.Ticket}
			continue
		}
		// No room. Fail the waiters that would wait longer than they allow.
		if g.Window == WindowCooldown && s.pauseWindow != "" && g.RetryAt.Sub(s.pauseEnd).Abs() < time.Second {
			g.Window = s.pauseWindow // the day or month VirusTotal says is spent
		}
		failed := false
		for q := range s.queues {
			kept := s.queues[q][:0]
			for _, x := range s.queues[q] {
				if x.maxWait > 0 && g.RetryAt.Sub(now) > x.maxWait && !x.done {
					x.done = true
					x.ready <- grantResult{err: &QuotaExhaustedError{Window: g.Window, ResetAt: g.RetryAt}}
					failed = true
					continue
				}
				kept = append(kept, x)
			}
			s.queues[q] = kept
		}
		if failed {
			continue
		}
		s.armLocked(g.RetryAt, now)
		if !s.again {
			break
		}
	}
	s.pumping = false
	s.mu.Unlock()
}

func (s *Scheduler) armLocked(at, now time.Time) {
	if s.timer != nil && !s.timerAt.After(at) && s.timerAt.After(now) {
		return // an earlier wake-up is already set
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timerAt = at
	s.timer = time.AfterFunc(at.Sub(now), s.pump)
}

// Waiting reports how many callers wait for a slot, by priority.
func (s *Scheduler) Waiting() (interactive, backlog int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queues[Interactive]), len(s.queues[Backlog])
}

// Close stops the wake-up timer and fails every waiter.
func (s *Scheduler) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	for q := range s.queues {
		for _, w := range s.queues[q] {
			if !w.done {
				w.done = true
				w.ready <- grantResult{err: errSchedulerClosed}
			}
		}
		s.queues[q] = nil
	}
}

var errSchedulerClosed = errors.New("engine: scheduler closed")
