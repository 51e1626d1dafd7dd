package obs

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/engine"
)

func TestRunSamplesQuotaEvery30Seconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var calls atomic.Int64
		o := New(Sources{
			Limits: engine.PublicKeyLimits,
			Quota: func(_ context.Context, now time.Time) (engine.Usage, error) {
				n := calls.Add(1)
				return engine.Usage{MinuteInUse: int(n % 5), DayUsed: int(n)}, nil
			},
		}, testLogger(t))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- o.Run(ctx) }()

		synctest.Wait()
		if got := o.samples(time.Now()); len(got) != 1 || !got[0].At.Equal(start) {
			t.Fatalf("at start: samples %v, want one at %v", got, start)
		}
		time.Sleep(SampleInterval - time.Nanosecond)
		synctest.Wait()
		if n := len(o.samples(time.Now())); n != 1 {
			t.Fatalf("before 30 s: %d samples, want 1", n)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		want := []Sample{
			{At: start, Minute: 1, Day: 1},
			{At: start.Add(SampleInterval), Minute: 2, Day: 2},
		}
		if diff := cmp.Diff(want, o.samples(time.Now())); diff != "" {
			t.Fatalf("after 30 s (-want +got):\n%s", diff)
		}

		// A day later the ring holds the last 24 hours, oldest first.
		time.Sleep(HistoryWindow)
		synctest.Wait()
		got := o.samples(time.Now())
		if len(got) != historyLen {
			t.Fatalf("after a day: %d samples, want %d", len(got), historyLen)
		}
		first, last := got[0].At, got[len(got)-1].At
		if !last.Equal(time.Now()) || !first.Equal(time.Now().Add(-HistoryWindow+SampleInterval)) {
			t.Errorf("after a day the samples run from %v to %v; want the last 24 hours up to %v", first, last, time.Now())
		}
		for i := 1; i < len(got); i++ {
			if got[i].At.Sub(got[i-1].At) != SampleInterval {
				t.Fatalf("samples %d and %d are %v apart", i-1, i, got[i].At.Sub(got[i-1].At))
			}
		}
		if n := calls.Load(); n != int64(historyLen)+2 {
			t.Errorf("the quota was read %d times, want %d", n, historyLen+2)
		}

		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestRunSkipsFailedSamples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		rec := &records{}
		o := New(Sources{
			Quota: func(context.Context, time.Time) (engine.Usage, error) {
				if calls.Add(1)%2 == 0 {
					return engine.Usage{}, errSource
				}
				return engine.Usage{DayUsed: 1}, nil
			},
		}, rec.logger())
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- o.Run(ctx) }()
		time.Sleep(5*SampleInterval + time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if n := len(o.samples(time.Now())); n != 3 {
			t.Errorf("%d samples of 6 reads where every second failed, want 3", n)
		}
	})
}

func TestRunWithoutQuotaReturnsAtOnce(t *testing.T) {
	o := New(Sources{Name: "opencti"}, nil)
	if err := o.Run(t.Context()); err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestRingKeepsTheNewestInOrder(t *testing.T) {
	r := newRing(3)
	at := func(i int) time.Time { return fixedNow.Add(time.Duration(i) * time.Second) }
	for i := range 5 {
		r.add(Sample{At: at(i), Day: i})
	}
	want := []Sample{{At: at(2), Day: 2}, {At: at(3), Day: 3}, {At: at(4), Day: 4}}
	if diff := cmp.Diff(want, r.since(time.Time{})); diff != "" {
		t.Errorf("ring (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[1:], r.since(at(3))); diff != "" {
		t.Errorf("ring since the 4th (-want +got):\n%s", diff)
	}
}

func TestBucketizeKeepsTheHighestOfEachSpan(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 7, 0, 0, time.UTC)
	samples := []Sample{
		{At: now.Add(-25 * time.Hour), Day: 999},                        // too old
		{At: time.Date(2026, 3, 13, 15, 14, 59, 0, time.UTC), Day: 998}, // before the first span
		{At: time.Date(2026, 3, 13, 15, 15, 0, 0, time.UTC), Minute: 1, Day: 10},
		{At: time.Date(2026, 3, 13, 15, 29, 0, 0, time.UTC), Minute: 3, Day: 12, Paused: true},
		{At: time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC), Minute: 4, Day: 400, Month: 9},
		{At: now, Minute: 2, Day: 401, Month: 10},
	}
	want := []HistoryPoint{
		{Start: time.Date(2026, 3, 13, 15, 15, 0, 0, time.UTC), Minute: 3, Day: 12, Paused: true, Samples: 2},
		{Start: time.Date(2026, 3, 14, 15, 0, 0, 0, time.UTC), Minute: 4, Day: 401, Month: 10, Samples: 2},
	}
	points := bucketize(samples, now)
	if diff := cmp.Diff(want, points); diff != "" {
		t.Errorf("bucketize (-want +got):\n%s", diff)
	}

	c := charts(points, engine.Limits{PerMinute: 4, PerDay: 500}, now)
	bars := func(c chart) []bar {
		for i := range c.Bars {
			c.Bars[i].Title = ""
		}
		return c.Bars
	}
	wantMinute := []bar{
		{X: 1, Y: 41, W: 8, H: 75, Class: "paused"},
		{X: 951, Y: 16, W: 8, H: 100, Class: "full"},
	}
	if diff := cmp.Diff(wantMinute, bars(c[0])); diff != "" {
		t.Errorf("minute bars (-want +got):\n%s", diff)
	}
	if c[1].LimitY != plotTop || c[1].Bars[1].H != 81 { // 401 of 500, rounded up
		t.Errorf("day chart: limit at %d, last bar %d high", c[1].LimitY, c[1].Bars[1].H)
	}
	if c[2].Limit != 0 || c[2].LimitY != 0 || c[2].Bars[1].H != plotHeight {
		t.Errorf("month chart without budget: %+v", c[2])
	}
}
