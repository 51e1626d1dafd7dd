package store

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/vtconnector/vtconnector/internal/engine"
)

// The database ledger must answer exactly like engine.MemLedger. A random
// but reproducible script of Takes, Settles, Pauses and budget changes runs
// against both, across a midnight that is also a month's end.
func TestLedgerMatchesMemLedger(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn)
		mem, db := engine.NewMemLedger(), s.Ledger("fp-diff")
		rng := rand.New(rand.NewPCG(7, 11))
		budgets := []engine.Limits{
			{PerMinute: 4, PerDay: 30, PerMonth: 45},
			{PerMinute: 2, PerDay: 30, PerMonth: 45},
			{PerMinute: 7, PerDay: 30, PerMonth: 45},
			{PerMinute: 0, PerDay: 30, PerMonth: 45},
			{PerMinute: 4},
		}
		lim := budgets[0]
		now := time.Date(2026, 1, 31, 23, 40, 0, 0, time.UTC)
		type tickets struct{ mem, db int64 }
		var granted []tickets
		windows := map[string]int{}
		ignoreTicket := cmpopts.IgnoreFields(engine.Grant{}, "Ticket")
		for step := range 600 {
			now = now.Add(time.Duration(1+rng.IntN(15_000)) * time.Millisecond)
			switch r := rng.IntN(100); {
			case r < 65:
				hold := time.Duration(rng.IntN(90)) * time.Second
				gm, err := mem.Take(ctx, now, lim, hold)
				if err != nil {
					t.Fatal(err)
				}
				gd, err := db.Take(ctx, now, lim, hold)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(gm, gd, ignoreTicket); diff != "" {
					t.Fatalf("step %d: Take at %v with %+v (-mem +db):\n%s", step, now, lim, diff)
				}
				if gd.OK {
					granted = append(granted, tickets{gm.Ticket, gd.Ticket})
					windows["granted"]++
				} else {
					windows[gd.Window]++
				}
			case r < 88:
				if len(granted) == 0 {
					continue
				}
				tk := granted[rng.IntN(len(granted))]
				if err := mem.Settle(ctx, tk.mem, now); err != nil {
					t.Fatal(err)
				}
				if err := db.Settle(ctx, tk.db, now); err != nil {
					t.Fatal(err)
				}
			case r < 91:
				until := now.Add(time.Duration(rng.IntN(120)) * time.Second)
				if err := mem.Pause(ctx, until); err != nil {
					t.Fatal(err)
				}
				if err := db.Pause(ctx, until); err != nil {
					t.Fatal(err)
				}
			case r < 95:
				lim = budgets[rng.IntN(len(budgets))]
			}
			got, err := s.QuotaUsage(ctx, "fp-diff", now)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(mem.Usage(now), got); diff != "" {
				t.Fatalf("step %d: usage at %v (-mem +db):\n%s", step, now, diff)
			}
		}
		// The script must have hit every window, or it proves little.
		for _, w := range []string{"granted", engine.WindowMinute, engine.WindowDay, engine.WindowMonth, engine.WindowCooldown} {
			if windows[w] == 0 {
				t.Errorf("the script never saw %q (%v)", w, windows)
			}
		}
		t.Logf("answers: %v", windows)
	})
}

func TestLedgerKeysAreSeparate(t *testing.T) {
	t.Parallel()
	s := openStore(t, ":memory:")
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	lim := engine.Limits{PerMinute: 1}
	for _, key := range []string{"fp-a", "fp-b"} {
		g, err := s.Ledger(key).Take(t.Context(), now, lim, time.Minute)
		if err != nil || !g.OK {
			t.Errorf("first Take of %s = %+v, %v; want a grant", key, g, err)
		}
	}
	g, err := s.Ledger("fp-a").Take(t.Context(), now, lim, time.Minute)
	if err != nil || g.OK || g.Window != engine.WindowMinute || !g.RetryAt.Equal(now.Add(2*time.Minute)) {
		t.Errorf("second Take of fp-a = %+v, %v; want minute full until %v", g, err, now.Add(2*time.Minute))
	}
}

// Several handles on one database (as several instances would have), each
// with several goroutines, share one budget.
func TestLedgerSharedByConcurrentStores(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		for _, tt := range []struct {
			name string
			lim  engine.Limits
			want int64
		}{
			{"minute", engine.Limits{PerMinute: 10}, 10},
			{"day", engine.Limits{PerDay: 7}, 7},
			{"month", engine.Limits{PerMinute: 20, PerMonth: 5}, 5},
		} {
			t.Run(tt.name, func(t *testing.T) {
				// One instant for every Take: no window rolls over during
				// the test, so once the budget is spent every Take is
				// refused and each taker stops at its first refusal.
				var (
					granted atomic.Int64
					wg      sync.WaitGroup
					ledgers []engine.Ledger
				)
				// Open (and migrate) the stores first.
				for range 3 {
					ledgers = append(ledgers, openStore(t, dsn).Ledger("fp-"+tt.name))
				}
				now := time.Now()
				for _, l := range ledgers {
					for range 3 {
						wg.Go(func() {
							for range 1000 {
								g, err := l.Take(t.Context(), now, tt.lim, time.Minute)
								if err != nil {
									t.Error(err)
									return
								}
								if !g.OK {
									return
								}
								granted.Add(1)
							}
							t.Error("1000 grants in a row: the budget is not enforced")
						})
					}
				}
				wg.Wait()
				if got := granted.Load(); got != tt.want {
					t.Errorf("%d grants, want exactly %d", got, tt.want)
				}
			})
		}
	})
}

// VirusTotal's count of the key's use raises the shared counters like
// MemLedger's, never lowers them, and a new period starts from it.
func TestLedgerSeedUsage(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn)
		mem, db := engine.NewMemLedger(), s.Ledger("fp-seed")
		lim := engine.Limits{PerDay: 10, PerMonth: 100}
		now := time.Date(2026, 1, 31, 23, 58, 0, 0, time.UTC)
		for _, l := range []engine.Ledger{mem, db} {
			for range 2 {
				if g, err := l.Take(ctx, now, lim, 0); err != nil || !g.OK {
					t.Fatalf("take: %+v %v", g, err)
				}
			}
		}
		steps := []struct {
			at         time.Time
			day, month int64
			want       engine.Usage
		}{
			{now, 7, 50, engine.Usage{DayUsed: 7, MonthUsed: 50}},
			{now, 3, 20, engine.Usage{DayUsed: 7, MonthUsed: 50}}, // never lowered
			{now.Add(5 * time.Minute), 4, 4, engine.Usage{DayUsed: 4, MonthUsed: 4}},
			{now.Add(6 * time.Minute), 0, 0, engine.Usage{DayUsed: 4, MonthUsed: 4}},
		}
		for i, st := range steps {
			for name, l := range map[string]engine.Ledger{"mem": mem, "db": db} {
				if err := l.(engine.UsageSeeder).SeedUsage(ctx, st.at, st.day, st.month); err != nil {
					t.Fatalf("step %d %s: %v", i, name, err)
				}
			}
			got, err := s.QuotaUsage(ctx, "fp-seed", st.at)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(st.want, got); diff != "" {
				t.Errorf("step %d: db usage (-want +got):\n%s", i, diff)
			}
			if diff := cmp.Diff(st.want, mem.Usage(st.at)); diff != "" {
				t.Errorf("step %d: mem usage (-want +got):\n%s", i, diff)
			}
		}
		// The seeded use counts against the budget: 4 used, 6 left today.
		granted := 0
		for range 10 {
			if g, _ := db.Take(ctx, now.Add(7*time.Minute), lim, 0); g.OK {
				granted++
			}
		}
		if granted != 6 {
			t.Errorf("%d granted after seeding 4 of 10, want 6", granted)
		}
	})
}
