package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// Run with:
//
//	VTC_TEST_POSTGRES_DSN=postgres://… go test -run '^$' -bench . -benchtime 3s ./internal/store/
//	VTC_BENCH_BIG=1 VTC_TEST_POSTGRES_DSN=… go test -run '^$' -bench BenchmarkCacheBig -benchtime 1x -timeout 30m ./internal/store/

func benchBackends(b *testing.B, fn func(b *testing.B, dsn string)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, filepath.Join(b.TempDir(), "bench.db")) })
	b.Run("postgres", func(b *testing.B) { fn(b, postgresDSN(b)) })
}

// BenchmarkQueue measures one item's whole trip: Enqueue, Claim (one at a
// time), Complete(Done), by 1 and 4 concurrent workers.
func BenchmarkQueue(b *testing.B) {
	benchBackends(b, func(b *testing.B, dsn string) {
		for _, workers := range []int{1, 4} {
			b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
				ctx := context.Background()
				s := openStore(b, dsn)
				run := strconv.FormatInt(time.Now().UnixNano(), 36) // keys unique across b.N rounds
				payload := json.RawMessage(`{"md5":"44D88612FEA8A8F36DE82E1278ABB02F","server_added_timestamp":"2026-03-14T12:00:00Z"}`)
				var enqueued, done atomic.Int64
				n := int64(b.N)
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := range workers {
					owner := fmt.Sprintf("bench-%d", w)
					wg.Go(func() {
						for done.Load() < n {
							if i := enqueued.Add(1); i <= n {
								if _, err := s.Enqueue(ctx, NewItem{Kind: "bench", Key: run + "-" + strconv.FormatInt(i, 10), Payload: payload}); err != nil {
									b.Error(err)
									return
								}
							}
							its, err := s.Claim(ctx, owner, []string{"bench"}, 1, time.Minute)
							if err != nil {
								b.Error(err)
								return
							}
							for _, it := range its {
								if err := s.Complete(ctx, it.ID, owner, Done(nil)); err != nil {
									b.Error(err)
									return
								}
								done.Add(1)
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "items/s")
			})
		}
	})
}

// BenchmarkQuota measures one Take+Settle (a public key's budget, the
// clock moving a minute per request so that every Take is granted).
func BenchmarkQuota(b *testing.B) {
	benchBackends(b, func(b *testing.B, dsn string) {
		ctx := context.Background()
		s := openStore(b, dsn)
		l := s.Ledger("bench-" + strconv.FormatInt(time.Now().UnixNano(), 36))
		lim := engine.Limits{PerMinute: 4, PerDay: 1 << 30, PerMonth: 1 << 30}
		now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
		b.ResetTimer()
		for b.Loop() {
			now = now.Add(61 * time.Second)
			g, err := l.Take(ctx, now, lim, 0)
			if err != nil || !g.OK {
				b.Fatalf("Take = %+v, %v", g, err)
			}
			if err := l.Settle(ctx, g.Ticket, now); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCache measures Put (a new ~2 KB object each) and Get (of one of
// 10,000 cached objects).
func BenchmarkCache(b *testing.B) {
	benchBackends(b, func(b *testing.B, dsn string) {
		ctx := context.Background()
		s := openStore(b, dsn)
		rng := rand.New(rand.NewPCG(1, 2))
		b.Run("Put", func(b *testing.B) {
			entries := make([]engine.Entry, 0, 1024)
			for range 1024 {
				entries = append(entries, fakeEntry(rng))
			}
			run := strconv.FormatInt(time.Now().UnixNano(), 36)
			i := 0
			for b.Loop() {
				e := entries[i%len(entries)]
				e.ID = run + strconv.Itoa(i)
				i++
				if err := s.Put(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Get", func(b *testing.B) {
			ids := make([]string, 10_000)
			entries := make([]engine.Entry, len(ids))
			for i := range ids {
				entries[i] = fakeEntry(rng)
				ids[i] = entries[i].ID
			}
			if err := putMany(ctx, s, entries); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				_, ok, err := s.Get(ctx, vt.KindFile, ids[i%len(ids)])
				if err != nil || !ok {
					b.Fatalf("Get = %v, %v", ok, err)
				}
				i += 7919
			}
		})
	})
}

// BenchmarkCacheBig fills the cache with VTC_BENCH_BIG_N (default
// 1,000,000) objects of ~2 KB and reports the size on disk and the
// process's memory. Opt in with VTC_BENCH_BIG=1; run with -benchtime 1x.
func BenchmarkCacheBig(b *testing.B) {
	if os.Getenv("VTC_BENCH_BIG") != "1" {
		b.Skip("VTC_BENCH_BIG=1 not set")
	}
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("VTC_BENCH_BIG_N")); err == nil && v > 0 {
		total = v
	}
	benchBackends(b, func(b *testing.B, dsn string) {
		ctx := context.Background()
		s := openStore(b, dsn)
		_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // reset the peak RSS
		for b.Loop() {
			start := time.Now()
			var (
				jsonBytes atomic.Int64
				next      atomic.Int64
				wg        sync.WaitGroup
			)
			const batch = 1000
			for w := range 4 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 99))
					entries := make([]engine.Entry, batch)
					for next.Add(batch) <= int64(total) {
						for i := range entries {
							entries[i] = fakeEntry(rng)
							jsonBytes.Add(int64(len(entries[i].Data)))
						}
						if err := putMany(ctx, s, entries); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			fill := time.Since(start)
			st, err := s.CacheStats(ctx)
			if err != nil {
				b.Fatal(err)
			}
			// Reads on the full table.
			rng := rand.New(rand.NewPCG(0, 99))
			var ids []string
			for range 2000 {
				ids = append(ids, fakeEntry(rng).ID)
			}
			getStart := time.Now()
			for _, id := range ids {
				if _, ok, err := s.Get(ctx, vt.KindFile, id); err != nil || !ok {
					b.Fatalf("Get(%s) = %v, %v", id, ok, err)
				}
			}
			getEach := time.Since(getStart) / time.Duration(len(ids))
			size := dbSize(b, s, dsn)
			rss, hwm := procStatus("VmRSS"), procStatus("VmHWM")
			b.ReportMetric(float64(st.Entries), "objects")
			b.ReportMetric(float64(jsonBytes.Load())/float64(st.Entries), "json-B/object")
			b.ReportMetric(float64(size)/(1<<20), "db-MiB")
			b.ReportMetric(float64(size)/float64(st.Entries), "db-B/object")
			b.ReportMetric(float64(rss)/(1<<10), "rss-MiB")
			b.ReportMetric(float64(hwm)/(1<<10), "peak-rss-MiB")
			b.ReportMetric(float64(st.Entries)/fill.Seconds(), "puts/s")
			b.ReportMetric(float64(getEach.Microseconds()), "get-µs")
			b.Logf("%d objects (%.0f B JSON each) in %s: %.0f MiB on disk, RSS %d MiB (peak %d MiB), Get %s",
				st.Entries, float64(jsonBytes.Load())/float64(st.Entries), fill.Round(time.Second), float64(size)/(1<<20), rss>>10, hwm>>10, getEach)
		}
	})
}

// putMany stores entries in one transaction (bulk loading for the
// benchmarks; the engine stores one answer at a time with Put).
func putMany(ctx context.Context, s *Store, entries []engine.Entry) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, cachePutSQL)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, e := range entries {
			if _, err := st.ExecContext(ctx, string(e.Kind), e.ID, e.Found, text(e.Data), dbTime(e.FetchedAt)); err != nil {
				return err
			}
		}
		return nil
	})
}

func dbSize(b *testing.B, s *Store, dsn string) int64 {
	b.Helper()
	if s.Dialect() == DialectPostgres {
		var n int64
		if err := s.db.QueryRowContext(context.Background(), `SELECT pg_total_relation_size('vt_objects')`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}
	if _, err := s.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(dsn + suffix); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// procStatus reads a kB field of /proc/self/status.
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// fakeEntry is a found file with a realistic ~2 KB VirusTotal object.
func fakeEntry(rng *rand.Rand) engine.Entry {
	hexN := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return hex.EncodeToString(b)
	}
	md5, sha1, sha256 := hexN(16), hexN(20), hexN(32)
	engines := []string{"Kaspersky", "ESET-NOD32", "Microsoft", "BitDefender", "Sophos", "CrowdStrike", "SentinelOne", "Avast"}
	malicious := rng.IntN(len(engines) + 1)
	results := make(map[string]any, len(engines))
	for i, name := range engines {
		r := map[string]any{"category": "undetected", "engine_name": name, "engine_version": fmt.Sprintf("%d.%d.%d", rng.IntN(30), rng.IntN(10), rng.IntN(999)), "result": nil, "method": "blacklist", "engine_update": "20260314"}
		if i < malicious {
			r["category"], r["result"] = "malicious", fmt.Sprintf("Trojan.Win32.Agent.%s", hexN(3))
		}
		results[name] = r
	}
	first := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(6 * 365 * 24 * time.Hour))))
	obj := map[string]any{
		"id": sha256, "type": "file",
		"links": map[string]string{"self": "https://www.virustotal.com/api/v3/files/" + sha256},
		"attributes": map[string]any{
			"md5": md5, "sha1": sha1, "sha256": sha256,
			"ssdeep":                fmt.Sprintf("%d:%s:%s", 24+rng.IntN(1000), hexN(12), hexN(10)),
			"size":                  rng.IntN(20 << 20),
			"type_description":      "Win32 EXE",
			"type_tag":              "peexe",
			"magic":                 "PE32 executable (GUI) Intel 80386, for MS Windows",
			"names":                 []string{"setup_" + hexN(3) + ".exe", "invoice.exe"},
			"meaningful_name":       "setup_" + hexN(3) + ".exe",
			"tags":                  []string{"peexe", "signed", "overlay"},
			"first_submission_date": first.Unix(),
			"last_analysis_date":    first.Add(time.Duration(rng.IntN(1000)) * time.Hour).Unix(),
			"times_submitted":       1 + rng.IntN(50),
			"reputation":            -rng.IntN(100),
			"last_analysis_stats":   map[string]int{"malicious": malicious, "suspicious": 0, "undetected": len(engines) - malicious, "harmless": 0, "timeout": 0, "type-unsupported": 4},
			"last_analysis_results": results,
			"total_votes":           map[string]int{"harmless": rng.IntN(5), "malicious": rng.IntN(20)},
		},
	}
	data, _ := json.Marshal(obj)
	return engine.Entry{Kind: vt.KindFile, ID: sha256, Found: true, Data: data, FetchedAt: first}
}

// BenchmarkClaimBacklog: Claim(1) + Complete(Done) with 100,000 items
// waiting in the queue, of the kind claimed (a Carbon Black backfill) or
// of another kind (quick scans behind a deep-scan backlog). The claim's
// cost must not grow with either backlog.
func BenchmarkClaimBacklog(b *testing.B) {
	const backlog = 100_000
	benchBackends(b, func(b *testing.B, dsn string) {
		for _, other := range []bool{false, true} {
			name := "same-kind"
			if other {
				name = "other-kind"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				s := openStore(b, dsn)
				kind := "bench"
				if other {
					kind = "other"
				}
				enqueue := func(items []NewItem) {
					for len(items) > 0 {
						n := min(len(items), 1000)
						if _, err := s.EnqueueMany(ctx, items[:n]); err != nil {
							b.Fatal(err)
						}
						items = items[n:]
					}
				}
				items := make([]NewItem, 0, backlog+b.N)
				for i := range backlog {
					items = append(items, NewItem{Kind: kind, Key: "backlog-" + strconv.Itoa(i), Priority: 1})
				}
				for i := range b.N {
					items = append(items, NewItem{Kind: "bench", Key: strconv.Itoa(i), Priority: 1})
				}
				enqueue(items)
				b.ResetTimer()
				for range b.N {
					its, err := s.Claim(ctx, "bench", []string{"bench"}, 1, time.Minute)
					if err != nil || len(its) != 1 {
						b.Fatalf("claim: %v, %d items", err, len(its))
					}
					if err := s.Complete(ctx, its[0].ID, "bench", Done(nil)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
			})
		}
	})
}
