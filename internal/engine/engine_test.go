package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stubAPI records when each call was made and answers with fn.
type stubAPI struct {
	mu    sync.Mutex
	calls []call
	fn    func(kind vt.Kind, id string, n int) (*vt.Object, error)
	delay time.Duration
}

type call struct {
	at   time.Time
	kind vt.Kind
	id   string
}

func (s *stubAPI) answer(ctx context.Context, kind vt.Kind, id string) (*vt.Object, error) {
	s.mu.Lock()
	s.calls = append(s.calls, call{time.Now(), kind, id})
	n := len(s.calls)
	s.mu.Unlock()
	if s.delay > 0 {
		if err := retry.Sleep(ctx, s.delay); err != nil {
			return nil, err
		}
	}
	if s.fn != nil {
		return s.fn(kind, id, n)
	}
	return object(kind, id), nil
}

func object(kind vt.Kind, id string) *vt.Object {
	raw := fmt.Sprintf(`{"type":%q,"id":%q,"attributes":{"last_analysis_stats":{"malicious":3,"harmless":60}}}`, kind, id)
	o, err := vt.DecodeObject([]byte(raw))
	if err != nil {
		panic(err)
	}
	return o
}

func (s *stubAPI) File(ctx context.Context, h string) (*vt.Object, error) {
	return s.answer(ctx, vt.KindFile, h)
}
func (s *stubAPI) IPAddress(ctx context.Context, ip string) (*vt.Object, error) {
	return s.answer(ctx, vt.KindIP, ip)
}
func (s *stubAPI) Domain(ctx context.Context, d string) (*vt.Object, error) {
	return s.answer(ctx, vt.KindDomain, d)
}
func (s *stubAPI) URLByID(ctx context.Context, id string) (*vt.Object, error) {
	return s.answer(ctx, vt.KindURL, id)
}

func (s *stubAPI) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]time.Time, len(s.calls))
	for i, c := range s.calls {
		out[i] = c.at
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

func hash(i int) string { return fmt.Sprintf("%032x", i+1) }

func newEngine(api API, lim Limits) *Engine {
	return New(api, NewMemCache(), NewScheduler(NewMemLedger(), lim, time.Minute, nil), Options{})
}

// maxInWindow is the largest number of calls within any span of length w
// (a call at t and one at t+w are in different spans).
func maxInWindow(ts []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

func lookupAll(t *testing.T, e *Engine, ids []string, p Priority) []error {
	t.Helper()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			_, errs[i] = e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: id, CallOptions: CallOptions{Priority: p}})
		})
	}
	wg.Wait()
	return errs
}

func TestMinuteBudgetNeverExceeded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		perMin  int
		n       int
		latency time.Duration
	}{
		{"public key, no latency", 4, 40, 0},
		{"public key, slow answers", 4, 30, 7 * time.Second},
		{"premium key", 1000, 3500, 20 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				api := &stubAPI{delay: tc.latency}
				e := newEngine(api, Limits{PerMinute: tc.perMin})
				start := time.Now()
				ids := make([]string, tc.n)
				for i := range ids {
					ids[i] = hash(i)
				}
				for i, err := range lookupAll(t, e, ids, Backlog) {
					if err != nil {
						t.Fatalf("lookup %d: %v", i, err)
					}
				}
				ts := api.times()
				if len(ts) != tc.n {
					t.Fatalf("API calls = %d, want %d", len(ts), tc.n)
				}
				// The server counts a request when it arrives, at most
				// latency after it was sent: a window of 60 s measured on
				// sends must hold at most perMin.
				if got := maxInWindow(ts, MinuteWindow+tc.latency); got > tc.perMin {
					t.Errorf("%d calls within one minute, budget %d", got, tc.perMin)
				}
				// Nothing wasted: the whole run takes about n/perMin minutes.
				minutes := (tc.n+tc.perMin-1)/tc.perMin - 1
				wantMax := time.Duration(minutes)*(MinuteWindow+tc.latency) + tc.latency + time.Second
				if took := time.Since(start); took > wantMax {
					t.Errorf("run took %s, want at most %s", took, wantMax)
				}
			})
		})
	}
}

func TestDayAndMonthBudgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at 2000-01-01 00:00 UTC.
		api := &stubAPI{}
		e := newEngine(api, Limits{PerMinute: 100, PerDay: 10, PerMonth: 25})
		ids := make([]string, 30)
		for i := range ids {
			ids[i] = hash(i)
		}
		for i, err := range lookupAll(t, e, ids, Backlog) {
			if err != nil {
				t.Fatalf("lookup %d: %v", i, err)
			}
		}
		perDay := map[string]int{}
		perMonth := map[string]int{}
		for _, at := range api.times() {
			perDay[at.UTC().Format("2006-01-02")]++
			perMonth[at.UTC().Format("2006-01")]++
		}
		for d, n := range perDay {
			if n > 10 {
				t.Errorf("%d calls on %s, daily budget 10", n, d)
			}
		}
		for m, n := range perMonth {
			if n > 25 {
				t.Errorf("%d calls in %s, monthly budget 25", n, m)
			}
		}
		// 10 on Jan 1, 2 and 3, then the month is spent until Feb 1.
		want := map[string]int{"2000-01-01": 10, "2000-01-02": 10, "2000-01-03": 5, "2000-02-01": 5}
		for d, n := range want {
			if perDay[d] != n {
				t.Errorf("calls on %s = %d, want %d (all: %v)", d, perDay[d], n, perDay)
			}
		}
	})
}

func TestMaxWaitReportsExhaustedQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &stubAPI{}
		e := newEngine(api, Limits{PerMinute: 4, PerDay: 6})
		var found, exhausted int
		for i := range 10 {
			_, err := e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(i), CallOptions: CallOptions{MaxWait: 5 * time.Minute}})
			var qe *QuotaExhaustedError
			switch {
			case err == nil:
				found++
			case errors.As(err, &qe):
				exhausted++
				if qe.Window != WindowDay || !qe.ResetAt.Equal(NextDay(time.Now())) {
					t.Errorf("got %+v, want the day window resetting at %s", qe, NextDay(time.Now()))
				}
			default:
				t.Fatalf("lookup %d: %v", i, err)
			}
		}
		if found != 6 || exhausted != 4 {
			t.Errorf("found %d, exhausted %d; want 6 and 4", found, exhausted)
		}
		if len(api.times()) != 6 {
			t.Errorf("API calls = %d, want 6", len(api.times()))
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &stubAPI{}
		api.fn = func(kind vt.Kind, id string, n int) (*vt.Object, error) {
			if n == 1 {
				return nil, &vt.QuotaError{APIError: vt.APIError{Status: 429}, RetryAfter: 5 * time.Minute}
			}
			return object(kind, id), nil
		}
		e := newEngine(api, Limits{PerMinute: 100})
		start := time.Now()
		if _, err := e.Lookup(t.Context(), Request{Kind: vt.KindIP, ID: "1.2.3.4"}); err != nil {
			t.Fatal(err)
		}
		if ts := api.times(); len(ts) != 2 || ts[1].Sub(start) != 5*time.Minute {
			t.Errorf("calls at %v; want the retry 5 minutes after the first", ts)
		}
	})
}

func TestInteractiveBeforeBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &stubAPI{}
		e := newEngine(api, Limits{PerMinute: 1})
		// Use the one slot, then queue backlog work, then interactive work.
		if _, err := e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(0)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := 1; i <= 3; i++ {
			wg.Go(func() {
				_, _ = e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(i), CallOptions: CallOptions{Priority: Backlog}})
			})
			synctest.Wait()
		}
		for i := 11; i <= 12; i++ {
			wg.Go(func() {
				_, _ = e.Lookup(t.Context(), Request{Kind: vt.KindDomain, ID: fmt.Sprintf("host%d.example.com", i), CallOptions: CallOptions{Priority: Interactive}})
			})
			synctest.Wait()
		}
		wg.Wait()
		var order []vt.Kind
		for _, c := range api.calls[1:] {
			order = append(order, c.kind)
		}
		want := []vt.Kind{vt.KindDomain, vt.KindDomain, vt.KindFile, vt.KindFile, vt.KindFile}
		if fmt.Sprint(order) != fmt.Sprint(want) {
			t.Errorf("order %v, want %v", order, want)
		}
		// FIFO within a priority.
		if api.calls[3].id != hash(1) || api.calls[5].id != hash(3) {
			t.Errorf("backlog not served in arrival order: %v", api.calls)
		}
	})
}

func TestConcurrentLookupsShareOneCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &stubAPI{delay: time.Second}
		e := newEngine(api, Limits{PerMinute: 4})
		ids := make([]string, 50)
		for i := range ids {
			ids[i] = hash(7)
		}
		for _, err := range lookupAll(t, e, ids, Interactive) {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := len(api.times()); n != 1 {
			t.Fatalf("API calls = %d, want 1", n)
		}
		// Later lookups of the same object, by any id form, are cached.
		r, err := e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(7)})
		if err != nil || !r.Cached || !r.Found {
			t.Fatalf("second lookup = %+v, %v; want a cached hit", r, err)
		}
		if c := e.Counters(); c.APICalls != 1 || c.Shared != 49 || c.CacheHits != 1 {
			t.Errorf("counters %+v", c)
		}
	})
}

func TestCacheFreshness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &stubAPI{}
		api.fn = func(kind vt.Kind, id string, _ int) (*vt.Object, error) {
			if id == hash(2) {
				return nil, &vt.APIError{Status: 404, Code: "NotFoundError"}
			}
			o := object(kind, id)
			o.Attributes.SHA256 = fmt.Sprintf("%064x", 99)
			return o, nil
		}
		e := New(api, NewMemCache(), NewScheduler(NewMemLedger(), Limits{}, 0, nil),
			Options{MaxAge: 24 * time.Hour, NotFoundMaxAge: time.Hour})
		get := func(id string, maxAge time.Duration) Result {
			t.Helper()
			r, err := e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: id, MaxAge: maxAge})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := get(hash(1), 0); r.Cached || !r.Found {
			t.Fatalf("first lookup %+v", r)
		}
		if r := get(fmt.Sprintf("%064x", 99), 0); !r.Cached {
			t.Errorf("lookup by the object's SHA-256 was not cached")
		}
		if r := get(hash(2), 0); r.Found || r.Cached {
			t.Errorf("unknown file: %+v", r)
		}
		time.Sleep(30 * time.Minute)
		if r := get(hash(2), 0); !r.Cached || r.Found {
			t.Errorf("not-found within an hour should be cached: %+v", r)
		}
		time.Sleep(31 * time.Minute)
		if r := get(hash(2), 0); r.Cached {
			t.Errorf("not-found older than an hour should be asked again")
		}
		if r := get(hash(1), 0); !r.Cached {
			t.Errorf("found object 61 minutes old should be cached")
		}
		if r := get(hash(1), 30*time.Minute); r.Cached {
			t.Errorf("a shorter MaxAge (rescan window) should force a new call")
		}
		if r := get(hash(1), -1); r.Cached {
			t.Errorf("MaxAge < 0 should force a new call")
		}
		if n := len(api.times()); n != 5 {
			t.Errorf("API calls = %d, want 5", n)
		}
	})
}

func TestTransientErrorsRetriedThenReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &stubAPI{}
		api.fn = func(kind vt.Kind, id string, n int) (*vt.Object, error) {
			if id == hash(1) && n <= 2 { // flaky, then fine
				return nil, &vt.APIError{Status: 503, Code: "TransientError"}
			}
			if id == hash(2) { // always down
				return nil, &vt.APIError{Status: 503, Code: "TransientError"}
			}
			if id == hash(3) {
				return nil, &vt.APIError{Status: 401, Code: "WrongCredentialsError"}
			}
			return object(kind, id), nil
		}
		e := newEngine(api, Limits{})
		if _, err := e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(1)}); err != nil {
			t.Errorf("flaky call: %v", err)
		}
		_, err := e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(2)})
		if !errors.Is(err, vt.ErrTransient) {
			t.Errorf("always-down call: %v, want ErrTransient", err)
		}
		n := len(api.times())
		_, err = e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(3)})
		if !errors.Is(err, vt.ErrAuth) || len(api.times()) != n+1 {
			t.Errorf("auth error: %v after %d calls; want ErrAuth after one", err, len(api.times())-n)
		}
		// 3 for the flaky one, 1+4 retries for the dead one, 1 auth.
		if got := len(api.times()); got != 3+5+1 {
			t.Errorf("API calls = %d, want 9", got)
		}
	})
}

func TestCancelledWaiterLosesNothingForOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := &stubAPI{}
		e := newEngine(api, Limits{PerMinute: 1})
		if _, err := e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(0)}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := e.Lookup(ctx, Request{Kind: vt.KindFile, ID: hash(1)})
			errc <- err
		}()
		var other error
		done := make(chan struct{})
		go func() {
			_, other = e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(1)})
			close(done)
		}()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled lookup: %v", err)
		}
		<-done
		if other != nil {
			t.Errorf("the lookup that joined the cancelled one failed: %v", other)
		}
		if n := len(api.times()); n != 2 {
			t.Errorf("API calls = %d, want 2", n)
		}
	})
}

func TestNormalizeRejectsBadInput(t *testing.T) {
	e := newEngine(&stubAPI{}, Limits{})
	for _, r := range []Request{
		{Kind: vt.KindFile, ID: "xyz"},
		{Kind: vt.KindIP, ID: "300.1.1.1"},
		{Kind: vt.KindDomain, ID: "-bad-.com"},
		{Kind: vt.KindURL, ID: ""},
		{Kind: "nonsense", ID: "a"},
	} {
		if _, err := e.Lookup(t.Context(), r); !errors.Is(err, vt.ErrBadRequest) {
			t.Errorf("Lookup(%+v) = %v, want ErrBadRequest", r, err)
		}
	}
}

// TestOneHashOnly: a file report is cached under its other hashes too,
// unless the engine is told that lookups always use one kind of hash.
func TestOneHashOnly(t *testing.T) {
	sha := fmt.Sprintf("%064x", 7)
	for _, one := range []bool{false, true} {
		t.Run(fmt.Sprintf("OneHashOnly=%v", one), func(t *testing.T) {
			api := &stubAPI{fn: func(kind vt.Kind, id string, _ int) (*vt.Object, error) {
				o := object(kind, id)
				o.Attributes.MD5, o.Attributes.SHA256 = id, sha
				return o, nil
			}}
			cache := NewMemCache()
			e := New(api, cache, NewScheduler(NewMemLedger(), Limits{}, 0, nil), Options{OneHashOnly: one})
			if _, err := e.Lookup(t.Context(), Request{Kind: vt.KindFile, ID: hash(1)}); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := cache.Get(t.Context(), vt.KindFile, hash(1)); !ok {
				t.Error("the report is not cached under the hash it was asked by")
			}
			if _, ok, _ := cache.Get(t.Context(), vt.KindFile, sha); ok == one {
				t.Errorf("cached under its SHA-256: %v, want %v", ok, !one)
			}
		})
	}
}
