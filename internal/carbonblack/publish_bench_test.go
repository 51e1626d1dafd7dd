package carbonblack

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/store"
)

type nopSyncer struct{}

func (nopSyncer) MarkDirty(bool) {}

// BenchmarkPublish100k: the feed refresh after a change, with 100,000
// verdicts (half of them malicious) stored in SQLite: read them all,
// build the reports, validate, encode, gzip. Reports the heap held after
// the refresh (the served snapshot) and the peak during it.
func BenchmarkPublish100k(b *testing.B) {
	st, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "p.db")+"?_synchronous=OFF")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for i := range 100_000 {
		v := Verdict{MD5: fmt.Sprintf("%032X", i), SHA256: fmt.Sprintf("%064x", i), Found: true, Total: 70,
			Link: fmt.Sprintf("https://www.virustotal.com/gui/file/%064x", i), ScanDate: time.Unix(1700000000, 0).UTC()}
		if i%2 == 0 {
			v.Positives, v.Label = 1+i%60, "trojan.generic/test"
			v.Detections = []Detection{{"EngineA", "Trojan.Gen"}, {"EngineB", "Malware"}, {"EngineC", "W32/Test"}}
		}
		b2, _ := json.Marshal(v)
		if _, err := st.PutResult(b.Context(), ResultsNS, v.MD5, b2); err != nil {
			b.Fatal(err)
		}
	}
	cache := NewFeedCache()
	p := NewPublisher(st, cache, DefaultFeedInfo(), FeedOptions{MinPositives: 1}, nopSyncer{}, slog.New(slog.DiscardHandler))
	var peak uint64
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := p.Refresh(b.Context()); err != nil {
			b.Fatal(err)
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		peak = max(peak, after.TotalAlloc-before.TotalAlloc)
	}
	runtime.GC()
	var held runtime.MemStats
	runtime.ReadMemStats(&held)
	b.ReportMetric(float64(held.HeapInuse)/(1<<20), "heap_MB_after")
	b.ReportMetric(float64(peak)/(1<<20), "alloc_MB/refresh")
	b.ReportMetric(float64(cache.Current().Reports), "reports")
}
