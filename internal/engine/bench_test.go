package engine_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// recorder remembers when the server received each request and what it
// answered.
type recorder struct {
	h    http.Handler
	mu   sync.Mutex
	at   []time.Time
	n429 []time.Time
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) { w.code = c; w.ResponseWriter.WriteHeader(c) }

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	sw := &statusWriter{ResponseWriter: w, code: 200}
	r.h.ServeHTTP(sw, req)
	r.mu.Lock()
	defer r.mu.Unlock()
	if sw.code == http.StatusTooManyRequests {
		r.n429 = append(r.n429, now)
	} else {
		r.at = append(r.at, now)
	}
}

func newStack(b *testing.B, sim http.Handler, lim engine.Limits) (*engine.Engine, *recorder) {
	rec := &recorder{h: sim}
	ts := httptest.NewServer(rec)
	b.Cleanup(ts.Close)
	c, err := vt.New("bench-key", vt.WithBaseURL(ts.URL+"/api/v3"),
		vt.WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}))
	if err != nil {
		b.Fatal(err)
	}
	sched := engine.NewScheduler(engine.NewMemLedger(), lim, 30*time.Second, nil)
	b.Cleanup(sched.Close)
	return engine.New(c, engine.NewMemCache(), sched, engine.Options{}), rec
}

func runLookups(b *testing.B, e *engine.Engine, ids []string, workers int) {
	jobs := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for id := range jobs {
				if _, err := e.Lookup(b.Context(), engine.Request{Kind: vt.KindFile, ID: id}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	wg.Wait()
}

// BenchmarkQuotaUse: 2,000 unique hashes and 2,000 repeats of them,
// shuffled, against a simulator that allows Q requests a minute, with the
// engine told the same Q. It reports how much of the budget each full
// minute used, the 429s, and API calls per unique hash. It takes about
// 2000/Q minutes; run it with -benchtime 1x.
func BenchmarkQuotaUse(b *testing.B) {
	const unique, q = 2000, 600
	for b.Loop() {
		sim := fakevt.New(fakevt.Config{QuotaPerMinute: q, UnknownPercent: 10, Seed: 3})
		e, rec := newStack(b, sim, engine.Limits{PerMinute: q})
		ids := make([]string, 0, 2*unique)
		for i := range unique {
			ids = append(ids, fmt.Sprintf("%064x", i+1))
		}
		ids = append(ids, ids...)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
		start := time.Now()
		runLookups(b, e, ids, 64)
		elapsed := time.Since(start)

		at := append([]time.Time(nil), rec.at...)
		sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
		// Requests the server accepted in each full minute from the first.
		full := int(elapsed / time.Minute)
		worst := 1.0
		for k := range full {
			lo, hi := start.Add(time.Duration(k)*time.Minute), start.Add(time.Duration(k+1)*time.Minute)
			n := 0
			for _, t := range at {
				if !t.Before(lo) && t.Before(hi) {
					n++
				}
			}
			worst = min(worst, float64(n)/q)
		}
		late429 := 0
		for _, t := range rec.n429 {
			if t.Sub(start) >= time.Minute {
				late429++
			}
		}
		b.ReportMetric(worst, "min_budget_used/full_minute")
		b.ReportMetric(float64(len(rec.at))/unique, "calls/unique_hash")
		b.ReportMetric(float64(len(rec.n429)), "429s")
		b.ReportMetric(float64(late429), "429s_after_first_minute")
		b.ReportMetric(elapsed.Seconds(), "run_s")
		b.ReportMetric(float64(maxInAnyMinute(at)), "max_requests_in_any_60s")
	}
}

func maxInAnyMinute(ts []time.Time) int {
	best, j := 0, 0
	for i := range ts {
		for ts[i].Sub(ts[j]) >= time.Minute {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// BenchmarkLookupOverhead: unique lookups through engine, client and a
// zero-latency, unlimited simulator over loopback HTTP; reports lookups
// per second and CPU time per lookup (user+system of the whole process,
// simulator included).
func BenchmarkLookupOverhead(b *testing.B) {
	for _, workers := range []int{1, 8} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			sim := fakevt.New(fakevt.Config{Seed: 5})
			e, _ := newStack(b, sim, engine.Limits{})
			ids := make([]string, b.N)
			for i := range ids {
				ids[i] = fmt.Sprintf("%064x", uint64(i)*2654435761+uint64(workers))
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			runLookups(b, e, ids, workers)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu_us/lookup")
		})
	}
}

// BenchmarkCacheHit: lookups answered from the in-memory cache.
func BenchmarkCacheHit(b *testing.B) {
	sim := fakevt.New(fakevt.Config{UnknownPercent: -1})
	e, _ := newStack(b, sim, engine.Limits{})
	id := fmt.Sprintf("%064x", 42)
	if _, err := e.Lookup(b.Context(), engine.Request{Kind: vt.KindFile, ID: id}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := e.Lookup(b.Context(), engine.Request{Kind: vt.KindFile, ID: id}); err != nil {
			b.Fatal(err)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
