package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vtconnector/vtconnector/internal/logbuf"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// sharedServer is a VirusTotal key of perMinute requests in any 60 s
// (sliding, counted at receipt) that another client also uses, once every
// otherEvery. It answers a bare 429 (no Retry-After) when full.
type sharedServer struct {
	mu         sync.Mutex
	perMinute  int
	otherEvery time.Duration
	start      time.Time
	ours       []time.Time
	refused    int
	refusedAt  []time.Time
}

func (s *sharedServer) fn(kind vt.Kind, id string, _ int) (*vt.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	n := 0
	for _, at := range s.ours {
		if now.Sub(at) < MinuteWindow {
			n++
		}
	}
	if s.otherEvery > 0 { // the other client's requests in (now-60s, now]
		for at := s.start; !at.After(now); at = at.Add(s.otherEvery) {
			if now.Sub(at) < MinuteWindow {
				n++
			}
		}
	}
	if n >= s.perMinute {
		s.refused++
		s.refusedAt = append(s.refusedAt, now)
		return nil, &vt.QuotaError{APIError: vt.APIError{Status: 429}}
	}
	s.ours = append(s.ours, now)
	return object(kind, id), nil
}

func newLogged(api API, lim Limits, opt Options) (*Engine, *logbuf.Buffer) {
	lb := &logbuf.Buffer{}
	opt.Log = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(api, NewMemCache(), NewScheduler(NewMemLedger(), lim, time.Minute, opt.Log), opt), lb
}

func TestShared429LowersTheRateAndNeverPausesLongerThanTheWindow(t *testing.T) {
	tests := []struct {
		name string
		lim  Limits
	}{
		{"configured per-minute budget", Limits{PerMinute: 10}},
		{"unlimited per-minute budget", Limits{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The key allows 10 a minute; another client uses 4 of them.
				srv := &sharedServer{perMinute: 10, otherEvery: 15 * time.Second, start: time.Now()}
				api := &stubAPI{fn: srv.fn, delay: 500 * time.Millisecond}
				e, logs := newLogged(api, tt.lim, Options{})
				ids := make([]string, 60)
				for i := range ids {
					ids[i] = hash(i)
				}
				for i, err := range lookupAll(t, e, ids, Backlog) {
					if err != nil {
						t.Fatalf("lookup %d lost: %v", i, err)
					}
				}
				calls := api.times()
				if got := len(calls) - srv.refused; got != 60 {
					t.Errorf("%d successful calls, want 60", got)
				}
				if srv.refused == 0 {
					t.Fatal("the server refused nothing: the test did not exercise 429s")
				}
				// Never a pause of minutes: calls keep coming at least
				// once a window (plus the answer's latency).
				for i := 1; i < len(calls); i++ {
					if gap := calls[i].Sub(calls[i-1]); gap > MinuteWindow+time.Second {
						t.Errorf("no call between %s and %s: a pause of %s", calls[i-1].Sub(calls[0]), calls[i].Sub(calls[0]), gap)
					}
				}
				if tt.lim.PerMinute > 0 {
					if got := maxInWindow(calls, MinuteWindow); got > tt.lim.PerMinute {
						t.Errorf("%d calls in one minute, budget %d", got, tt.lim.PerMinute)
					}
				}
				// It adapts instead of hammering: after the first two
				// windows, few calls are refused.
				settled := calls[0].Add(2*MinuteWindow + 2*time.Second)
				late, lateRefused := 0, 0
				for _, at := range calls {
					if at.After(settled) {
						late++
					}
				}
				for _, at := range srv.refusedAt {
					if at.After(settled) {
						lateRefused++
					}
				}
				if lateRefused*4 > late {
					t.Errorf("%d of the %d calls after the first two minutes refused: the rate did not adapt", lateRefused, late)
				}
				if !strings.Contains(logs.String(), "lowering the per-minute rate") {
					t.Error("the rate cut was not logged")
				}
				t.Logf("%d calls, %d refused, done in %s", len(calls), srv.refused, calls[len(calls)-1].Sub(calls[0]))
				if testing.Verbose() {
					t.Log(logs)
				}
			})
		})
	}
}

func TestLoweredRateRisesAfterCleanWindows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var e *Engine
		var during int
		api := &stubAPI{}
		api.fn = func(kind vt.Kind, id string, n int) (*vt.Object, error) {
			switch n {
			case 3:
				return nil, &vt.QuotaError{APIError: vt.APIError{Status: 429, Code: "QuotaExceededError"}}
			case 10:
				during = e.Scheduler().Budget().Rate
			}
			return object(kind, id), nil
		}
		e = newEngine(api, Limits{PerMinute: 20})
		ids := make([]string, 120)
		for i := range ids {
			ids[i] = hash(i)
		}
		// The first three one at a time: the third is answered 429, and
		// the rate is cut before any other request can be granted (all
		// at once, twenty lookups would take the minute's twenty slots in
		// the same instant as the 429, in whatever order the goroutines
		// run: the test would measure the scheduling, not the rule).
		for i := range 3 {
			if err := lookupAll(t, e, ids[i:i+1], Backlog)[0]; err != nil {
				t.Fatalf("lookup %d: %v", i, err)
			}
		}
		for i, err := range lookupAll(t, e, ids[3:], Backlog) {
			if err != nil {
				t.Fatalf("lookup %d: %v", i+3, err)
			}
		}
		if during != 16 {
			t.Errorf("rate after one 429 = %d, want 16 (20 × 0.8)", during)
		}
		calls := api.times()
		if got := maxInWindow(calls, MinuteWindow); got > 20 {
			t.Errorf("%d calls in one minute, budget 20", got)
		}
		// 16 in the first minute, then one more each clean minute.
		perMinute := map[int]int{}
		for _, at := range calls {
			perMinute[int(at.Sub(calls[0])/MinuteWindow)]++
		}
		want := map[int]int{0: 16, 1: 17, 2: 18, 3: 19, 4: 20, 5: 20, 6: 11}
		for m, n := range want {
			if perMinute[m] != n {
				t.Errorf("minute %d: %d calls, want %d (all minutes: %v)", m, perMinute[m], n, perMinute)
			}
		}
		if r := e.Scheduler().Budget().Rate; r != 0 {
			t.Errorf("rate still lowered to %d after clean minutes", r)
		}
	})
}

// stubQuotas answers OverallQuotas with fn and counts the reads.
type stubQuotas struct {
	mu    sync.Mutex
	reads int
	fn    func(n int) (*vt.Quotas, error)
}

func (s *stubQuotas) OverallQuotas(context.Context) (*vt.Quotas, error) {
	s.mu.Lock()
	s.reads++
	n := s.reads
	s.mu.Unlock()
	return s.fn(n)
}

func (s *stubQuotas) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

func quotas(hourly, daily, dailyUsed, monthly, monthlyUsed int64) *vt.Quotas {
	q := &vt.Quotas{}
	if hourly > 0 {
		q.Hourly.User = &vt.Quota{Allowed: hourly}
	}
	if daily > 0 {
		q.Daily.Group = &vt.Quota{Allowed: daily, Used: dailyUsed, InheritedFrom: "acme"}
		q.Daily.User = &vt.Quota{Allowed: 1_000_000_000}
	}
	if monthly > 0 {
		q.Monthly.User = &vt.Quota{Allowed: monthly, Used: monthlyUsed}
	}
	return q
}

func TestBudgetLearnedFromVirusTotal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		qr := &stubQuotas{fn: func(int) (*vt.Quotas, error) { return quotas(600, 20_000, 0, 450_000, 0), nil }}
		api := &stubAPI{}
		// The configuration set only the per-minute budget.
		e, logs := newLogged(api, Limits{PerMinute: 4}, Options{Quotas: qr, Learn: LearnPerDay | LearnPerMonth})
		start := time.Now()
		if _, err := e.Lookup(t.Context(), Request{Kind: vt.KindIP, ID: "1.2.3.4"}); err != nil {
			t.Fatal(err)
		}
		b := e.Scheduler().Budget()
		want := Limits{PerMinute: 4, PerDay: 20_000, PerMonth: 450_000}
		if b.Limits != want || e.Scheduler().Limits() != want {
			t.Errorf("limits in force %+v, want %+v", b.Limits, want)
		}
		if b.Reported != (Limits{PerMinute: 10, PerDay: 20_000, PerMonth: 450_000}) {
			t.Errorf("reported %+v", b.Reported)
		}
		if !b.ReadAt.Equal(start) || b.Learned != LearnPerDay|LearnPerMonth {
			t.Errorf("budget %+v: want read at the start, day and month learned", b)
		}
		if src := b.Source(); src != "learned from VirusTotal at 2000-01-01T00:00:00Z (per day, per month), the rest configured" {
			t.Errorf("source %q", src)
		}
		for _, line := range []string{"daily budget 20000 taken from VirusTotal", "monthly budget 450000 taken from VirusTotal"} {
			if !strings.Contains(logs.String(), line) {
				t.Errorf("log lacks %q:\n%s", line, logs)
			}
		}
		if strings.Contains(logs.String(), "per-minute budget") {
			t.Errorf("the configured per-minute budget was replaced:\n%s", logs)
		}
		for i := range 3 {
			if _, err := e.Lookup(t.Context(), Request{Kind: vt.KindIP, ID: fmt.Sprintf("1.2.3.%d", i+5)}); err != nil {
				t.Fatal(err)
			}
		}
		if n := qr.count(); n != 1 {
			t.Errorf("%d quota reads within the first hour, want 1", n)
		}
		time.Sleep(QuotaReadEvery)
		if _, err := e.Lookup(t.Context(), Request{Kind: vt.KindIP, ID: "9.9.9.9"}); err != nil {
			t.Fatal(err)
		}
		if n := qr.count(); n != 2 {
			t.Errorf("%d quota reads after an hour, want 2", n)
		}
		if n := len(api.times()); n != 5 {
			t.Errorf("%d API calls, want 5: quota reads are not API calls", n)
		}

		// Nothing configured: everything learned, the per-minute budget
		// from the hourly allowance.
		e2, _ := newLogged(&stubAPI{}, Limits{}, Options{Quotas: qr, Learn: LearnAll})
		if _, err := e2.Lookup(t.Context(), Request{Kind: vt.KindIP, ID: "1.2.3.4"}); err != nil {
			t.Fatal(err)
		}
		if got := e2.Scheduler().Limits(); got != (Limits{PerMinute: 10, PerDay: 20_000, PerMonth: 450_000}) {
			t.Errorf("all learned: %+v", got)
		}
	})
}

func TestFailingQuotaReadLoggedOnceAndBudgetKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		qr := &stubQuotas{fn: func(int) (*vt.Quotas, error) {
			return nil, &vt.APIError{Status: 403, Code: "ForbiddenError"}
		}}
		conf := Limits{PerMinute: 4, PerDay: 500, PerMonth: 15_500}
		e, logs := newLogged(&stubAPI{}, conf, Options{Quotas: qr, Learn: LearnAll})
		for i := range 3 {
			if _, err := e.Lookup(t.Context(), Request{Kind: vt.KindIP, ID: fmt.Sprintf("1.2.3.%d", i)}); err != nil {
				t.Fatalf("lookup %d: %v", i, err)
			}
			time.Sleep(QuotaReadEvery)
		}
		if n := qr.count(); n != 3 {
			t.Errorf("%d reads, want 3 (one an hour)", n)
		}
		if n := strings.Count(logs.String(), "reading the VirusTotal quota failed; the configured budget stays"); n != 1 {
			t.Errorf("failure logged %d times at warn level, want once:\n%s", n, logs)
		}
		if b := e.Scheduler().Budget(); b.Limits != conf || b.Learned != 0 || b.Source() != "configured" {
			t.Errorf("budget %+v (%s), want the configured one", b, b.Source())
		}
	})
}

func TestUseCountedByVirusTotalIsTakenIntoTheLedger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Another tool used 497 of the day's 500.
		qr := &stubQuotas{fn: func(int) (*vt.Quotas, error) { return quotas(0, 500, 497, 0, 0), nil }}
		api := &stubAPI{}
		e, _ := newLogged(api, Limits{PerMinute: 100}, Options{Quotas: qr, Learn: LearnAll})
		var answered int
		var qe *QuotaExhaustedError
		for i := range 6 {
			_, err := e.Lookup(t.Context(), Request{Kind: vt.KindIP, ID: fmt.Sprintf("1.2.3.%d", i),
				CallOptions: CallOptions{MaxWait: time.Hour}})
			switch {
			case err == nil:
				answered++
			case errors.As(err, &qe):
			default:
				t.Fatal(err)
			}
		}
		if answered != 3 || len(api.times()) != 3 {
			t.Errorf("%d answered, %d calls: want the 3 left of the day", answered, len(api.times()))
		}
		if qe == nil || qe.Window != WindowDay || !qe.ResetAt.Equal(NextDay(time.Now())) {
			t.Errorf("error %v, want the day spent until midnight", qe)
		}
	})
}

func TestDaySpentPerVirusTotalPausesUntilMidnight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Our budget has room, but another tool spends the key's day:
		// from the 5th call VirusTotal answers 429, and its figures say
		// the day is spent.
		qr := &stubQuotas{fn: func(n int) (*vt.Quotas, error) {
			if n == 1 {
				return quotas(0, 500, 10, 0, 0), nil
			}
			return quotas(0, 500, 500, 0, 0), nil
		}}
		api := &stubAPI{delay: time.Second}
		api.fn = func(kind vt.Kind, id string, n int) (*vt.Object, error) {
			if n >= 5 {
				return nil, &vt.QuotaError{APIError: vt.APIError{Status: 429}}
			}
			return object(kind, id), nil
		}
		e, logs := newLogged(api, Limits{PerMinute: 4, PerDay: 1000}, Options{Quotas: qr})
		start := time.Now()
		var errs []error
		for i := range 8 {
			_, err := e.Lookup(t.Context(), Request{Kind: vt.KindIP, ID: fmt.Sprintf("1.2.3.%d", i),
				CallOptions: CallOptions{MaxWait: 30 * time.Minute}})
			errs = append(errs, err)
		}
		for i, err := range errs[:4] {
			if err != nil {
				t.Errorf("lookup %d: %v", i, err)
			}
		}
		for i, err := range errs[4:] {
			var qe *QuotaExhaustedError
			if !errors.As(err, &qe) || qe.Window != WindowDay || !qe.ResetAt.Equal(NextDay(start)) {
				t.Errorf("lookup %d: %v, want the day spent until midnight", i+4, err)
			}
		}
		// The re-read waits a minute after the first read; until then
		// the rate is lowered, not paused.
		if n := len(api.times()); n > 8 {
			t.Errorf("%d calls: the 429s were not understood", n)
		}
		if n := qr.count(); n != 2 {
			t.Errorf("%d quota reads, want 2", n)
		}
		if !strings.Contains(logs.String(), "window=day") {
			t.Errorf("the day pause was not logged:\n%s", logs)
		}
		if b := e.Scheduler().Budget(); b.Limits.PerDay != 1000 || b.Reported.PerDay != 500 {
			t.Errorf("budget %+v: the configured day budget must stay, VirusTotal's be reported", b)
		}
	})
}

func TestAHugeLearnedPerMinuteBudgetIsNotPacedSlotBySlot(t *testing.T) {
	s := NewScheduler(NewMemLedger(), PublicKeyLimits, time.Minute, nil)
	defer s.Close()
	_, after := s.SetReported(Limits{PerMinute: 1_000_000_000 / 60, PerDay: 1_000_000_000, PerMonth: 1_000_000_000}, LearnAll, time.Now())
	if after.PerMinute != 0 || after.PerDay != 1_000_000_000 {
		t.Errorf("limits %+v: want no per-minute pacing above %d a minute, the daily budget kept", after, MaxMinuteSlots)
	}
	if got := NewScheduler(NewMemLedger(), Limits{PerMinute: 50_000}, time.Minute, nil).Limits(); got.PerMinute != 0 {
		t.Errorf("a configured 50,000 a minute is paced slot by slot: %+v", got)
	}
}
