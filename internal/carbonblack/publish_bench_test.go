package carbonblack

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
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
// verdict, build the reports, render: what a start costs), and the
// refresh after one more detection was stored (what a change costs: the
// time it adds between a verdict and the served feed). 1,000,000 runs
// only with VTC_BENCH_BIG=1.
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
			start := time.Now()
			if err := p.Refresh(b.Context()); err != nil {
				b.Fatal(err)
			}
			first := time.Since(start)
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
			runtime.GC()
			var held runtime.MemStats
			runtime.ReadMemStats(&held)
			b.ReportMetric(first.Seconds(), "first_refresh_s")
			b.ReportMetric(float64(change.Milliseconds())/float64(b.N), "ms/change")
			b.ReportMetric(float64(changeCPU.Milliseconds())/float64(b.N), "cpu_ms/change")
			b.ReportMetric(float64(held.HeapInuse)/(1<<20), "heap_MB_after")
			b.ReportMetric(float64(cache.Current().Reports), "reports")
		})
	}
}

// cpuTime is the process's user + system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
