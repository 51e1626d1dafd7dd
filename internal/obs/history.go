package obs

import (
	"context"
	"time"
)

// Quota sampling for the status page's chart.
const (
	// SampleInterval is how often Run samples the quota use.
	SampleInterval = 30 * time.Second
	// HistoryWindow is how much sampled history the Observer keeps.
	HistoryWindow = 24 * time.Hour
	historyLen    = int(HistoryWindow / SampleInterval)
)

// Sample is the quota use at one moment.
type Sample struct {
	At     time.Time `json:"at"`
	Minute int       `json:"minute"` // minute slots in use
	Day    int       `json:"day"`
	Month  int       `json:"month"`
	Paused bool      `json:"paused"` // cooling down after a 429
}

// ring holds the newest samples, oldest overwritten first.
type ring struct {
	buf  []Sample
	next int
	full bool
}

func newRing(n int) ring { return ring{buf: make([]Sample, n)} }

func (r *ring) add(s Sample) {
	r.buf[r.next] = s
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

// since returns the samples taken at or after t, oldest first.
func (r *ring) since(t time.Time) []Sample {
	var out []Sample
	emit := func(ss []Sample) {
		for _, s := range ss {
			if !s.At.Before(t) {
				out = append(out, s)
			}
		}
	}
	if r.full {
		emit(r.buf[r.next:])
	}
	emit(r.buf[:r.next])
	return out
}

// Run samples the quota use every SampleInterval, starting at once, until
// ctx ends; the status page charts the samples. A failed read is skipped
// (and logged when the source starts failing). Without a Quota source
// there is nothing to sample and Run returns at once.
func (o *Observer) Run(ctx context.Context) error {
	if o.src.Quota == nil {
		return nil
	}
	t := time.NewTicker(SampleInterval)
	defer t.Stop()
	for {
		o.sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sample records the quota use now.
func (o *Observer) sample(ctx context.Context) {
	now := o.now()
	u, ok := o.quota(ctx, now)
	if !ok {
		return
	}
	s := Sample{At: now, Minute: u.MinuteInUse, Day: u.DayUsed, Month: u.MonthUsed, Paused: u.PausedUntil.After(now)}
	o.mu.Lock()
	o.history.add(s)
	o.mu.Unlock()
}

// samples returns the samples of the last HistoryWindow before now.
func (o *Observer) samples(now time.Time) []Sample {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.history.since(now.Add(-HistoryWindow))
}
