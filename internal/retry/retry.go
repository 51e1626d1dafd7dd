// Package retry holds the one sleep and the one backoff loop every part of
// vtconnector uses to wait: Sleep waits for a duration or until the
// context ends; Until runs an operation until it succeeds, fails for
// good, or the context ends, with exponential backoff between attempts.
//
// It imports nothing of vtconnector's.
package retry

import (
	"context"
	"time"
)

// Sleep waits for d or until ctx ends, whichever comes first; it returns
// ctx's error in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Backoff is an exponential backoff: First, then doubling up to Max.
type Backoff struct {
	First time.Duration // default 1 s
	Max   time.Duration // default 1 minute
}

// Next returns the wait after the wait d (0: the first wait).
func (b Backoff) Next(d time.Duration) time.Duration {
	first, ceil := b.First, b.Max
	if first <= 0 {
		first = time.Second
	}
	if ceil <= 0 {
		ceil = time.Minute
	}
	if d <= 0 {
		return min(first, ceil)
	}
	return min(d*2, ceil)
}

// Nth returns the nth wait (n ≥ 1): First·2ⁿ⁻¹, at most Max.
func (b Backoff) Nth(n int) time.Duration {
	d := b.Next(0)
	for i := 1; i < n; i++ {
		next := b.Next(d)
		if next == d {
			break
		}
		d = next
	}
	return d
}

// Until runs op until it returns nil, until stop(err) says the error is
// final, or until ctx ends; it waits with backoff between attempts and
// calls failed (when not nil) after each failed attempt with the error
// and the coming wait. It returns op's last error, or ctx's.
func Until(ctx context.Context, b Backoff, op func() error, stop func(error) bool, failed func(err error, wait time.Duration)) error {
	var wait time.Duration
	for {
		err := op()
		if err == nil || ctx.Err() != nil || stop != nil && stop(err) {
			return err
		}
		wait = b.Next(wait)
		if failed != nil {
			failed(err, wait)
		}
		if err := Sleep(ctx, wait); err != nil {
			return err
		}
	}
}
