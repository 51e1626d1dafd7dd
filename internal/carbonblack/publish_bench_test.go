package carbonblack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/store"
)

type nopSyncer struct{}

func (nopSyncer) MarkDirty(bool) {}

// BenchmarkPublish: n verdicts stored in SQLite (one in ten detected by
// 1 to 16 engines), then: the publisher's first refresh (read every
// verdict, build the reports, render: what a start costs), the refresh
// after one more detection was stored (what a change costs), the time
// from a detection stored to the served feed with the publisher running
// (after a quiet spell, and right after a refresh: the debounce), and the
// latency of /binaries.html (first page, a deep page) and of the status
// page's recent verdicts.
// 1,000,000 runs only with VTC_BENCH_BIG=1.
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("verdicts=%d", n), func(b *testing.B) {
			if n > 100_000 && os.Getenv("VTC_BENCH_BIG") != "1" {
				b.Skip("VTC_BENCH_BIG=1 not set")
			}
			// The stored verdicts were written over the last hour; the
			// changes come now.
			var clock atomic.Int64
			clock.Store(time.Now().Add(-time.Hour).UnixNano())
			st, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "p.db")+"?_synchronous=OFF",
				store.WithClock(func() time.Time { return time.Unix(0, clock.Add(int64(time.Hour)/int64(n))) }))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			verdict := func(i int) Verdict {
				v := Verdict{MD5: fmt.Sprintf("%032X", i), SHA256: fmt.Sprintf("%064x", i), Found: true, Total: 70,
					Link: fmt.Sprintf("https://www.virustotal.com/gui/file/%064x", i), ScanDate: time.Unix(1700000000, 0).UTC()}
				if i%10 == 0 {
					v.Positives, v.Label = 1+i%16, "trojan.generic/test"
					v.Detections = []Detection{{"EngineA", "Trojan.Gen"}, {"EngineB", "Malware"}, {"EngineC", "W32/Test"}}
				}
				return v
			}
			for i := range n {
				b2, _ := json.Marshal(verdict(i))
				if _, err := st.PutResult(b.Context(), ResultsNS, fmt.Sprintf("%032X", i), b2); err != nil {
					b.Fatal(err)
				}
			}
			clock.Store(time.Now().UnixNano())
			cache := NewFeedCache()
			p := NewPublisher(st, cache, DefaultFeedInfo(), FeedOptions{MinPositives: 1}, nopSyncer{}, slog.New(slog.DiscardHandler))
			var first time.Duration
			firstPeak := heapPeakDuring(func() {
				start := time.Now()
				if err := p.Refresh(b.Context()); err != nil {
					b.Fatal(err)
				}
				first = time.Since(start)
			})
			b.ResetTimer()
			var change, changeCPU time.Duration
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				clock.Store(time.Now().UnixNano())
				v := verdict(n + 10*i) // a new detection
				b2, _ := json.Marshal(v)
				if _, err := st.PutResult(b.Context(), ResultsNS, v.MD5, b2); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				t0, c0 := time.Now(), cpuTime()
				if err := p.Refresh(b.Context()); err != nil {
					b.Fatal(err)
				}
				change += time.Since(t0)
				changeCPU += cpuTime() - c0
			}
			b.StopTimer()

			// A whole re-read (every fullEvery), with nothing changed.
			p.lastFull = time.Time{}
			var reread time.Duration
			rereadPeak := heapPeakDuring(func() {
				start := time.Now()
				if err := p.Refresh(b.Context()); err != nil {
					b.Fatal(err)
				}
				reread = time.Since(start)
			})

			// From a new detection stored to the served feed, with the
			// publisher running as the connector runs it (no refresh
			// sooner than the 500 ms debounce after the last): the time
			// the feed adds after the verdict, for a detection after a
			// quiet spell (rendered at once) and for one right after a
			// refresh (the debounce, the worst case).
			ctx, stop := context.WithCancel(b.Context())
			done := make(chan struct{})
			go func() { defer close(done); _ = p.Run(ctx) }()
			const detections = 3
			detect := func(i int) time.Duration {
				before := cache.Current()
				clock.Store(time.Now().UnixNano())
				v := verdict(n + 10*(b.N+i+1))
				b2, _ := json.Marshal(v)
				t0 := time.Now()
				if _, err := st.PutResult(b.Context(), ResultsNS, v.MD5, b2); err != nil {
					b.Fatal(err)
				}
				p.Changed()
				for cache.Current() == before {
					time.Sleep(time.Millisecond)
				}
				return time.Since(t0)
			}
			var toFeed, toFeedBusy time.Duration
			for i := range detections {
				time.Sleep(p.debounce + 200*time.Millisecond) // quiet
				toFeed += detect(2 * i)
				toFeedBusy += detect(2*i + 1) // right after that one's refresh
			}
			stop()
			<-done

			// The HTML index: the first page, and a page nine tenths in
			// (by key), and the status page's recent verdicts.
			h := NewServer(ServerConfig{}, cache, StoreVerdicts{st}, nil).Handler()
			page := func(q string) time.Duration {
				const reps = 5
				t0 := time.Now()
				for range reps {
					w := &feedDiscardWriter{h: http.Header{}}
					r := httptest.NewRequest(http.MethodGet, "/binaries.html"+q, nil)
					r.RemoteAddr = "127.0.0.1:1"
					h.ServeHTTP(w, r)
					if w.code != 0 && w.code != http.StatusOK || w.n < 10_000 { // 0: Write without WriteHeader
						b.Fatalf("%s: status %d, %d bytes", q, w.code, w.n)
					}
				}
				return time.Since(t0) / reps
			}
			firstPage, deepPage := page(""), page("?after="+fmt.Sprintf("%032X", n*9/10))
			t0 := time.Now()
			if rs, err := st.RecentResults(b.Context(), ResultsNS, 25); err != nil || len(rs) != 25 {
				b.Fatal(len(rs), err)
			}
			recent := time.Since(t0)

			runtime.GC()
			var held runtime.MemStats
			runtime.ReadMemStats(&held)
			b.ReportMetric(first.Seconds(), "first_refresh_s")
			b.ReportMetric(firstPeak, "first_refresh_heap_peak_MB")
			b.ReportMetric(reread.Seconds(), "reread_s")
			b.ReportMetric(rereadPeak, "reread_heap_peak_MB")
			b.ReportMetric(float64(change.Milliseconds())/float64(b.N), "ms/change")
			b.ReportMetric(float64(changeCPU.Milliseconds())/float64(b.N), "cpu_ms/change")
			b.ReportMetric(float64(held.HeapInuse)/(1<<20), "heap_MB_after")
			b.ReportMetric(float64(cache.Current().Reports), "reports")
			b.ReportMetric(float64(toFeed.Microseconds())/1000/detections, "to_feed_ms")
			b.ReportMetric(float64(toFeedBusy.Microseconds())/1000/detections, "to_feed_busy_ms")
			b.ReportMetric(float64(firstPage.Microseconds())/1000, "index_first_ms")
			b.ReportMetric(float64(deepPage.Microseconds())/1000, "index_deep_ms")
			b.ReportMetric(float64(recent.Microseconds())/1000, "recent_ms")
		})
	}
}

// heapPeakDuring runs f and returns the most heap its objects took above
// what was live before it (sampled every 2 ms), in MB.
func heapPeakDuring(f func()) float64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	return float64(max(peak.Load(), base)-base) / (1 << 20)
}

// cpuTime is the process's user + system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
