package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sync"
	"time"
)

// Limits is a key's request budget. Zero means unlimited.
type Limits struct {
	PerMinute int
	PerDay    int
	PerMonth  int
}

// PublicKeyLimits is the budget of a free VirusTotal key.
var PublicKeyLimits = Limits{PerMinute: 4, PerDay: 500, PerMonth: 15_500}

// Validate reports negative budgets.
func (l Limits) Validate() error {
	if l.PerMinute < 0 || l.PerDay < 0 || l.PerMonth < 0 {
		return fmt.Errorf("quota limits must not be negative (per minute %d, per day %d, per month %d)", l.PerMinute, l.PerDay, l.PerMonth)
	}
	return nil
}

// MinuteWindow is the length of the per-minute window. A request holds its
// minute slot from the moment it is sent until one window after its
// answer arrived: VirusTotal received it before we got the answer, so
// whatever the latency, no 60-second span at the server ever sees more
// than PerMinute requests.
const MinuteWindow = time.Minute

// Window names, as reported in Grant and QuotaExhaustedError.
const (
	WindowMinute   = "minute"
	WindowDay      = "day"
	WindowMonth    = "month"
	WindowCooldown = "cooldown"
)

// Grant is a ledger's answer to Take.
type Grant struct {
	OK      bool
	Ticket  int64     // when OK: pass it to Settle
	RetryAt time.Time // when not OK: the earliest time a Take can succeed
	Window  string    // when not OK: the window that is full
}

// Ledger keeps the quota accounts. The in-memory MemLedger serves one
// process; the store's ledger lets several processes share one key's
// budget exactly.
type Ledger interface {
	// Take reserves one request in every window at now, or says when to
	// come back. hold bounds how long the request may stay in flight:
	// if Settle never comes (a crash), the slot frees hold+MinuteWindow
	// after now.
	Take(ctx context.Context, now time.Time, lim Limits, hold time.Duration) (Grant, error)
	// Settle records that the request of ticket got its answer at done;
	// its minute slot frees MinuteWindow later.
	Settle(ctx context.Context, ticket int64, done time.Time) error
	// Pause refuses every Take until until (after a 429).
	Pause(ctx context.Context, until time.Time) error
}

// UsageSeeder is a Ledger that can take VirusTotal's count of the key's
// use: SeedUsage raises the day and month counters at now to dayUsed and
// monthUsed when they are lower (another client used the key), and never
// lowers them.
type UsageSeeder interface {
	SeedUsage(ctx context.Context, now time.Time, dayUsed, monthUsed int64) error
}

// NextDay is the start of the UTC day after t; VirusTotal's daily quota
// resets then.
func NextDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// NextMonth is the start of the UTC month after t.
func NextMonth(t time.Time) time.Time {
	y, m, _ := t.UTC().Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
}

// MemLedger is an in-process Ledger.
type MemLedger struct {
	mu         sync.Mutex
	slots      []slot // one per request allowed per minute
	day        time.Time
	dayUsed    int
	month      time.Time
	monthUsed  int
	pauseUntil time.Time
	next       int64
}

type slot struct {
	busyUntil time.Time
	ticket    int64
}

// NewMemLedger returns an empty in-memory ledger.
func NewMemLedger() *MemLedger { return &MemLedger{} }

// Take implements Ledger.
func (l *MemLedger) Take(_ context.Context, now time.Time, lim Limits, hold time.Duration) (Grant, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.pauseUntil) {
		return Grant{RetryAt: l.pauseUntil, Window: WindowCooldown}, nil
	}
	l.roll(now)
	if lim.PerMonth > 0 && l.monthUsed >= lim.PerMonth {
		return Grant{RetryAt: NextMonth(now), Window: WindowMonth}, nil
	}
	if lim.PerDay > 0 && l.dayUsed >= lim.PerDay {
		return Grant{RetryAt: NextDay(now), Window: WindowDay}, nil
	}
	idx := -1
	if lim.PerMinute > 0 {
		l.resize(lim.PerMinute)
		earliest := time.Time{}
		for i := range l.slots {
			b := l.slots[i].busyUntil
			if !b.After(now) {
				idx = i
				break
			}
			if earliest.IsZero() || b.Before(earliest) {
				earliest = b
			}
		}
		if idx < 0 {
			return Grant{RetryAt: earliest, Window: WindowMinute}, nil
		}
	}
	l.next++
	if idx >= 0 {
		l.slots[idx] = slot{busyUntil: now.Add(hold + MinuteWindow), ticket: l.next}
	}
	l.dayUsed++
	l.monthUsed++
	return Grant{OK: true, Ticket: l.next}, nil
}

// roll starts a new day and month at now. l.mu must be held.
func (l *MemLedger) roll(now time.Time) {
	day := NextDay(now).AddDate(0, 0, -1)
	if !day.Equal(l.day) {
		l.day, l.dayUsed = day, 0
	}
	month := NextMonth(now).AddDate(0, -1, 0)
	if !month.Equal(l.month) {
		l.month, l.monthUsed = month, 0
	}
}

// SeedUsage implements UsageSeeder.
func (l *MemLedger) SeedUsage(_ context.Context, now time.Time, dayUsed, monthUsed int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	l.dayUsed = max(l.dayUsed, int(min(dayUsed, math.MaxInt32)))
	l.monthUsed = max(l.monthUsed, int(min(monthUsed, math.MaxInt32)))
	return nil
}

// resize keeps the busiest slots when the budget shrinks, so that a
// smaller budget is honoured at once.
func (l *MemLedger) resize(n int) {
	for len(l.slots) < n {
		l.slots = append(l.slots, slot{})
	}
	for len(l.slots) > n {
		// drop the slot that frees first
		min := 0
		for i := range l.slots {
			if l.slots[i].busyUntil.Before(l.slots[min].busyUntil) {
				min = i
			}
		}
		l.slots = append(l.slots[:min], l.slots[min+1:]...)
	}
}

// Settle implements Ledger.
func (l *MemLedger) Settle(_ context.Context, ticket int64, done time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.slots {
		if l.slots[i].ticket == ticket {
			l.slots[i].busyUntil = done.Add(MinuteWindow)
			return nil
		}
	}
	return nil
}

// Pause implements Ledger.
func (l *MemLedger) Pause(_ context.Context, until time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.After(l.pauseUntil) {
		l.pauseUntil = until
	}
	return nil
}

// Usage is a snapshot of a MemLedger's counters.
type Usage struct {
	MinuteInUse int
	DayUsed     int
	MonthUsed   int
	PausedUntil time.Time
}

// Usage reports the ledger's counters at now.
func (l *MemLedger) Usage(now time.Time) Usage {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := Usage{PausedUntil: l.pauseUntil}
	for _, s := range l.slots {
		if s.busyUntil.After(now) {
			u.MinuteInUse++
		}
	}
	if l.day.Equal(NextDay(now).AddDate(0, 0, -1)) {
		u.DayUsed = l.dayUsed
	}
	if l.month.Equal(NextMonth(now).AddDate(0, -1, 0)) {
		u.MonthUsed = l.monthUsed
	}
	return u
}

// KeyID is the fingerprint under which a key's quota is shared in a
// durable ledger: a hash of the key, never the key itself.
func KeyID(apiKey string) string {
	sum := sha256.Sum256([]byte("vtconnector quota key\x00" + apiKey))
	return hex.EncodeToString(sum[:12])
}
