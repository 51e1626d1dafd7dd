package obs

import (
	"sync"
	"time"
)

// Reads of a source that take longer than memoSlow are reused for
// memoFactor times their duration. The queue counts are a grouped count
// over every work item, kept or finished (a few hundred milliseconds at a
// million items): without the memo, each scrape or page view would pay it
// again, and a tight scraper could keep a core busy. With it, the counts
// cost at most 1/memoFactor of a core whatever the scrape rate, and a fast
// read (a small queue, every test) is never reused.
const (
	memoSlow   = 50 * time.Millisecond
	memoFactor = 20
)

// memo keeps the last successful result of a slow read for a time in
// proportion to what the read cost. Concurrent callers share one read.
type memo[T any] struct {
	mu    sync.Mutex
	val   T
	at    time.Time        // when the kept read finished
	valid time.Duration    // how long it is reused; 0: not kept
	now   func() time.Time // nil: time.Now; tests drive it
}

// get returns the kept value while it is valid, or calls read.
func (m *memo[T]) get(read func() (T, error)) (T, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now
	if now == nil {
		now = time.Now
	}
	if m.valid > 0 && now().Sub(m.at) < m.valid {
		return m.val, nil
	}
	start := now()
	v, err := read()
	took := now().Sub(start)
	if err != nil || took < memoSlow {
		m.valid = 0
		var zero T
		m.val = zero
		return v, err
	}
	m.val, m.at, m.valid = v, start.Add(took), memoFactor*took
	return v, nil
}
