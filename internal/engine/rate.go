package engine

import (
	"context"
	"time"
)

// How the per-minute rate adapts to a key shared with other clients:
// each 429 that the budget did not foresee multiplies the rate in use by
// rateCut (at most once per MinuteWindow, since one full window at the
// server refuses many requests at once), and each MinuteWindow without a
// 429 adds 1/rateSteps of the budget back, until the budget is reached.
const (
	rateCut   = 0.8
	rateSteps = 20
)

// Cooldown is called after VirusTotal answered 429 to a request sent at
// sentAt. When the server named a wait (retryAfter > 0) every caller
// pauses that long; otherwise the per-minute rate is lowered (Refused)
// and nobody pauses longer than the minute window takes to free. It
// returns the end of the pause, or now when there is none.
func (s *Scheduler) Cooldown(sentAt time.Time, retryAfter time.Duration) time.Time {
	now := time.Now()
	if retryAfter > 0 {
		return s.PauseUntil(now.Add(retryAfter), WindowCooldown)
	}
	s.Refused(now)
	return now
}

// Refused records a 429 answered at now that the budget did not foresee:
// the minute slot was free and the day and month not spent, so another
// client uses the key too. The per-minute rate in use is cut by rateCut
// (never below 1), at most once per MinuteWindow, and cut from what the
// server accepted in the last window when 429s persist a window after a
// cut; waiters then get slots
// as the lowered window frees, which is never longer than MinuteWindow
// after the answers in it. With an unlimited per-minute budget the cut
// starts from the rate observed over the last minute.
func (s *Scheduler) Refused(now time.Time) {
	s.mu.Lock()
	s.last429, s.cleanSince = now, time.Time{}
	s.refusals.add(now)
	if !s.lastCut.IsZero() && now.Sub(s.lastCut) < MinuteWindow {
		s.mu.Unlock()
		return
	}
	from := s.rate
	if from == 0 {
		from = s.lim.PerMinute
	}
	if from == 0 {
		// The rate observed over the last minute, extrapolated when the
		// daemon has been sending for less than a minute (a 429 seconds
		// after start must not cut to the handful sent so far).
		obs := float64(s.sent.inLast(now))
		if cover := now.Sub(s.firstSent); !s.firstSent.IsZero() && cover < MinuteWindow {
			obs *= float64(MinuteWindow) / float64(max(cover, time.Second))
		}
		from = max(1, int(obs))
		s.ceiling = from
	}
	if !s.lastCut.IsZero() && now.Sub(s.lastCut) < 2*MinuteWindow {
		// Still refused a window after the last cut: the key has room
		// for about what the server accepted from us in that window.
		from = min(from, max(1, s.answered.inLast(now)-s.refusals.inLast(now)))
	}
	s.rate = max(1, int(float64(from)*rateCut))
	s.lastCut, s.lastRaise, s.cleanSince = now, now, time.Time{}
	to := s.rate
	s.mu.Unlock()
	s.log.Warn("VirusTotal answered 429 although the budget had room: another client uses the key; lowering the per-minute rate",
		"from", from, "to", to)
	s.pump()
}

// PauseUntil refuses every request until until, in every process sharing
// the ledger; window names the budget that is spent (WindowDay,
// WindowMonth, or WindowCooldown when the server named the wait). It
// returns the end of the pause in force.
func (s *Scheduler) PauseUntil(until time.Time, window string) time.Time {
	s.mu.Lock()
	if until.After(s.pauseEnd) {
		s.pauseEnd, s.pauseWindow = until, window
	}
	until, window = s.pauseEnd, s.pauseWindow
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.ledger.Pause(ctx, until); err != nil {
		s.log.Warn("quota pause not recorded", "error", err)
	}
	s.log.Warn("VirusTotal quota spent: pausing all requests", "window", window, "until", until.UTC().Format(time.RFC3339))
	s.pump()
	return until
}

// limitsLocked returns the limits for a Take at now: those in force, with
// the per-minute rate lowered while a shared key answers 429s. A lowered
// rate rises by one step after each clean window: MinuteWindow of sending
// without a 429 (a window in which nothing could be sent is not clean).
// s.mu must be held.
func (s *Scheduler) limitsLocked(now time.Time) Limits {
	l := s.lim
	if s.rate == 0 {
		return l
	}
	target, step := l.PerMinute, MinuteWindow
	if target == 0 {
		// No per-minute budget: the rate cut from is only what was
		// observed, often little (a storm of 429s right after start), so
		// it grows by half after each clean half window instead of creeping
		// back by a twentieth of it a minute.
		target, step = s.ceiling, MinuteWindow/2
	}
	if !s.cleanSince.IsZero() && now.Sub(s.cleanSince) >= step && now.Sub(s.lastRaise) >= step {
		if l.PerMinute == 0 {
			s.rate = max(s.rate+1, s.rate*3/2)
		} else {
			s.rate += max(1, target/rateSteps)
		}
		s.lastRaise = now
		s.log.Info("no 429 for a while: raising the per-minute rate", "to", min(s.rate, target))
	}
	if s.rate >= target {
		s.rate, s.ceiling = 0, 0
		return l
	}
	l.PerMinute = s.rate
	return l
}

// sentCounter counts granted requests per second over the last minute.
type sentCounter struct {
	sec [60]int64
	n   [60]int
}

func (c *sentCounter) add(now time.Time) {
	u := now.Unix()
	i := (u%60 + 60) % 60
	if c.sec[i] != u {
		c.sec[i], c.n[i] = u, 0
	}
	c.n[i]++
}

// nextBelow returns when the count over the last minute drops below
// limit (now if it already is).
func (c *sentCounter) nextBelow(now time.Time, limit int) time.Time {
	u := now.Unix()
	n := c.inLast(now)
	for sec := u - 59; sec <= u && n >= limit; sec++ {
		i := (sec%60 + 60) % 60
		if c.sec[i] == sec {
			n -= c.n[i]
		}
		if n < limit {
			return time.Unix(sec+60, 0)
		}
	}
	return now
}

// inLast is the number of events in the 60 s up to now.
func (c *sentCounter) inLast(now time.Time) int {
	u, total := now.Unix(), 0
	for i := range c.sec {
		if d := u - c.sec[i]; d >= 0 && d < 60 {
			total += c.n[i]
		}
	}
	return total
}
