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
type Scheduler struct {
	ledger Ledger
	lim    Limits
	hold   time.Duration
	log    *slog.Logger

	mu       sync.Mutex
	queues   [2][]*waiter
	pumping  bool
	again    bool
	timer    *time.Timer
	timerAt  time.Time
	strikes  int       // consecutive 429s
	pauseEnd time.Time // end of the current 429 pause
	// After a 429, one request at a time probes the quota until one
	// succeeds, so a pause's end does not release every waiter into
	// another wall of 429s.
	probing   bool
	probeSlot int64 // ticket of the probe in flight, 0 if none
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
	return &Scheduler{ledger: ledger, lim: lim, hold: hold, log: log}
}

// Limits returns the budget the scheduler enforces.
func (s *Scheduler) Limits() Limits { return s.lim }

// Slot is one granted request. Done must be called once the answer has
// arrived (or the request was abandoned).
type Slot struct {
	s      *Scheduler
	ticket int64
	once   sync.Once
}

// Done settles the slot at the current time. Callers report a 429 with
// Cooldown or a success with Succeeded before calling Done.
func (sl *Slot) Done() {
	sl.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sl.s.ledger.Settle(ctx, sl.ticket, time.Now()); err != nil {
			sl.s.log.Warn("quota settle failed", "error", err)
		}
		sl.s.mu.Lock()
		if sl.s.probeSlot == sl.ticket {
			sl.s.probeSlot = 0
		}
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
		if w == nil || s.probing && s.probeSlot != 0 {
			break // nobody waits, or a probe is out: its Done pumps again
		}
		s.mu.Unlock()
		now := time.Now()
		g, err := s.ledger.Take(context.Background(), now, s.lim, s.hold)
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
			if s.probing {
				s.probeSlot = g.Ticket
			}
			w.ready <- grantResult{ticket: g.Ticket}
			continue
		}
		// No room. Fail the waiters that would wait longer than they allow.
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

// Cooldown is called after VirusTotal answered 429 to a request sent at
// sentAt although the ledger had room: the real quota is smaller than
// configured, or the day's or month's is spent. Every caller pauses:
// retryAfter when the server named one, else one minute, doubling with
// each new 429 up to an hour. Requests that were already in flight when a
// pause began do not escalate it. It returns the end of the pause.
func (s *Scheduler) Cooldown(sentAt time.Time, retryAfter time.Duration) time.Time {
	s.mu.Lock()
	if !sentAt.Before(s.pauseEnd) || s.strikes == 0 {
		s.strikes++
	}
	strikes := s.strikes
	s.probing = true
	d := min(MinuteWindow<<min(strikes-1, 6), time.Hour)
	if retryAfter > 0 {
		d = retryAfter
	}
	until := time.Now().Add(d)
	if until.After(s.pauseEnd) {
		s.pauseEnd = until
	}
	until = s.pauseEnd
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.ledger.Pause(ctx, until); err != nil {
		s.log.Warn("quota pause not recorded", "error", err)
	}
	s.log.Warn("VirusTotal answered 429: pausing all requests", "until", until.UTC().Format(time.RFC3339), "consecutive", strikes)
	s.pump()
	return until
}

// Succeeded resets the 429 escalation and ends probing.
func (s *Scheduler) Succeeded() {
	s.mu.Lock()
	s.strikes = 0
	s.probing = false
	s.mu.Unlock()
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
