package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkCopy: Copy of a store holding rows cached objects (~1 KB of
// JSON each) and rows work items, SQLite → PostgreSQL and back, at two
// sizes: the rate, and the heap at its highest during the copy (sampled
// every 5 ms), which must not grow with the size.
func BenchmarkCopy(b *testing.B) {
	for _, rows := range []int{50_000, 200_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			ctx := context.Background()
			src := openStore(b, filepath.Join(b.TempDir(), "src.db"))
			fillForCopy(b, src, rows)
			for b.Loop() {
				pg := openStore(b, postgresDSN(b))
				back := openStore(b, filepath.Join(b.TempDir(), "back.db"))
				for _, leg := range []struct {
					name     string
					from, to *Store
				}{{"to_pg", src, pg}, {"to_sqlite", pg, back}} {
					runtime.GC()
					var base runtime.MemStats
					runtime.ReadMemStats(&base)
					var peak atomic.Uint64
					stop := make(chan struct{})
					sampled := make(chan struct{})
					go func() {
						defer close(sampled)
						var m runtime.MemStats
						for {
							runtime.ReadMemStats(&m)
							if m.HeapInuse > peak.Load() {
								peak.Store(m.HeapInuse)
							}
							select {
							case <-stop:
								return
							case <-time.After(5 * time.Millisecond):
							}
						}
					}()
					start := time.Now()
					rep, err := Copy(ctx, leg.from, leg.to, CopyOptions{})
					took := time.Since(start)
					close(stop)
					<-sampled
					if err != nil {
						b.Fatal(err)
					}
					var n int64
					for _, c := range rep.Tables {
						n += c.Target
					}
					b.ReportMetric(float64(n)/took.Seconds(), leg.name+"_rows/s")
					b.ReportMetric(float64(peak.Load()-min(peak.Load(), base.HeapInuse))/(1<<20), leg.name+"_heap_growth_MB")
				}
			}
		})
	}
}

// fillForCopy writes rows cached objects and rows work items straight
// into s, in one transaction each.
func fillForCopy(b *testing.B, s *Store, rows int) {
	b.Helper()
	ctx := context.Background()
	data := `{"type":"file","attributes":{"last_analysis_stats":{"malicious":3,"undetected":60},"names":["` + strings.Repeat("x", 900) + `"]}}`
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		obj, err := tx.PrepareContext(ctx, cachePutSQL)
		if err != nil {
			return err
		}
		defer obj.Close()
		it, err := tx.PrepareContext(ctx, enqueueSQL)
		if err != nil {
			return err
		}
		defer it.Close()
		now := time.Now().UnixNano()
		for i := range rows {
			if _, err := obj.ExecContext(ctx, "file", fmt.Sprintf("%064x", i), true, data, now); err != nil {
				return err
			}
			if _, err := it.ExecContext(ctx, "cb.binary", fmt.Sprintf("%032x", i), `{"md5":"x"}`, 0, now, now, StateDone, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
