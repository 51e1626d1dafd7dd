package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// sideEffectsSQL is a table the tests write in the same transaction as
// Complete, to count how often each item was completed.
const sideEffectsSQL = `CREATE TABLE IF NOT EXISTS test_side_effects (key TEXT NOT NULL, worker TEXT NOT NULL)`

func createSideEffects(t testing.TB, s *Store) {
	t.Helper()
	if _, err := s.db.ExecContext(context.Background(), sideEffectsSQL); err != nil {
		t.Fatal(err)
	}
}

// completeRecording completes an item and records the side effect in the
// same transaction.
func completeRecording(ctx context.Context, s *Store, it Item, worker string, o Outcome) error {
	return s.complete(ctx, it.ID, worker, o, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO test_side_effects (key, worker) VALUES ($1, $2)`, it.Key, worker)
		return err
	})
}

// sideEffectCounts maps each key to how many times it was completed.
func sideEffectCounts(t testing.TB, s *Store) map[string]int {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), `SELECT key, COUNT(*) FROM test_side_effects GROUP BY key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[string]int{}
	for rows.Next() {
		var (
			k string
			n int
		)
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		m[k] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustEnqueue(t testing.TB, s *Store, items ...NewItem) {
	t.Helper()
	for _, it := range items {
		if ok, err := s.Enqueue(context.Background(), it); err != nil || !ok {
			t.Fatalf("Enqueue(%s %s) = %v, %v", it.Kind, it.Key, ok, err)
		}
	}
}

func mustGet(t testing.TB, s *Store, kind, key string) Item {
	t.Helper()
	it, ok, err := s.GetItem(context.Background(), kind, key)
	if err != nil || !ok {
		t.Fatalf("GetItem(%s, %s) = %v, %v", kind, key, ok, err)
	}
	return it
}

func keys(items []Item) []string {
	var ks []string
	for _, it := range items {
		ks = append(ks, it.Key)
	}
	return ks
}

func TestEnqueueIsIdempotent(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clk := newClock()
		s := openStore(t, dsn, WithClock(clk.Now))
		first := NewItem{Kind: "cb.binary", Key: "44D88612FEA8A8F36DE82E1278ABB02F", Payload: json.RawMessage(`{"n":1}`), Priority: 2}
		if ok, err := s.Enqueue(ctx, first); !ok || err != nil {
			t.Fatalf("first Enqueue = %v, %v; want true", ok, err)
		}
		again := first
		again.Payload = json.RawMessage(`{"n":2}`)
		if ok, err := s.Enqueue(ctx, again); ok || err != nil {
			t.Fatalf("second Enqueue = %v, %v; want false", ok, err)
		}
		want := Item{
			Kind: first.Kind, Key: first.Key, Payload: first.Payload, Priority: 2, State: StateQueued,
			NextAttemptAt: clk.Now(), CreatedAt: clk.Now(), UpdatedAt: clk.Now(),
		}
		if diff := cmp.Diff(want, mustGet(t, s, first.Kind, first.Key), cmpopts.IgnoreFields(Item{}, "ID")); diff != "" {
			t.Errorf("item (-want +got):\n%s", diff)
		}
		// Same key, other kind: another item.
		if ok, err := s.Enqueue(ctx, NewItem{Kind: "opencti.file", Key: first.Key}); !ok || err != nil {
			t.Errorf("Enqueue of the key under another kind = %v, %v; want true", ok, err)
		}
		// A finished item is not enqueued again.
		its, err := s.Claim(ctx, "w", []string{"cb.binary"}, 1, time.Minute)
		if err != nil || len(its) != 1 {
			t.Fatalf("Claim = %v, %v", its, err)
		}
		if err := s.Complete(ctx, its[0].ID, "w", Done(nil)); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Enqueue(ctx, first); ok || err != nil {
			t.Errorf("Enqueue of a done item = %v, %v; want false", ok, err)
		}
		n, err := s.EnqueueMany(ctx, []NewItem{first, {Kind: "cb.binary", Key: "a"}, {Kind: "cb.binary", Key: "b"}, {Kind: "cb.binary", Key: "a"}})
		if n != 2 || err != nil {
			t.Errorf("EnqueueMany = %d, %v; want 2", n, err)
		}
		if _, err := s.Enqueue(ctx, NewItem{Kind: "cb.binary"}); err == nil {
			t.Error("Enqueue without a key succeeded")
		}
	})
}

func TestClaimOrder(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clk := newClock()
		s := openStore(t, dsn, WithClock(clk.Now))
		mustEnqueue(t, s,
			NewItem{Kind: "k", Key: "old-low"},
			NewItem{Kind: "k", Key: "old-high", Priority: 5},
			NewItem{Kind: "k", Key: "new-low"},
			NewItem{Kind: "k", Key: "later-high", Priority: 5, NotBefore: clk.Now().Add(time.Hour)},
			NewItem{Kind: "other", Key: "other-top", Priority: 9},
			NewItem{Kind: "k", Key: "new-high", Priority: 5},
		)
		got, err := s.Claim(ctx, "w1", []string{"k"}, 2, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"old-high", "new-high"}, keys(got)); diff != "" {
			t.Errorf("first Claim (-want +got):\n%s", diff)
		}
		for _, it := range got {
			if it.State != StateLeased || it.LeaseOwner != "w1" || !it.LeaseUntil.Equal(clk.Now().Add(2*time.Hour)) {
				t.Errorf("claimed item %s: state %s owner %q until %v", it.Key, it.State, it.LeaseOwner, it.LeaseUntil)
			}
		}
		got, err = s.Claim(ctx, "w2", []string{"k"}, 10, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"old-low", "new-low"}, keys(got)); diff != "" {
			t.Errorf("second Claim (-want +got):\n%s", diff)
		}
		clk.Add(time.Hour)
		got, err = s.Claim(ctx, "w3", nil, 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"other-top", "later-high"}, keys(got)); diff != "" {
			t.Errorf("Claim of any kind after an hour (-want +got):\n%s", diff)
		}
		if got, err := s.Claim(ctx, "w3", []string{"k", "other"}, 10, 0); err == nil {
			t.Errorf("Claim without a lease = %v, want an error", got)
		}
		if got, err := s.Claim(ctx, "w3", nil, 0, time.Minute); len(got) != 0 || err != nil {
			t.Errorf("Claim of 0 items = %v, %v", got, err)
		}
	})
}

// claimOne enqueues a fresh item of its own kind and claims it for owner.
func claimOne(t testing.TB, s *Store, kind, owner string) Item {
	t.Helper()
	mustEnqueue(t, s, NewItem{Kind: kind, Key: "k-" + kind, Payload: json.RawMessage(`{"v":1}`)})
	its, err := s.Claim(context.Background(), owner, []string{kind}, 1, time.Minute)
	if err != nil || len(its) != 1 {
		t.Fatalf("Claim = %v, %v", its, err)
	}
	return its[0]
}

func TestCompleteOutcomes(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clk := newClock()
		s := openStore(t, dsn, WithClock(clk.Now))
		now := clk.Now()
		tests := []struct {
			name    string
			outcome Outcome
			want    Item // only the fields outcome sets
			paused  bool
		}{
			{"done stores the result", Done(json.RawMessage(`{"score":80}`)),
				Item{State: StateDone, NextAttemptAt: now, Result: json.RawMessage(`{"score":80}`)}, false},
			{"done without a result", Done(nil), Item{State: StateDone, NextAttemptAt: now}, false},
			{"not found finishes", NotFound(), Item{State: StateNotFound, NextAttemptAt: now}, false},
			{"pending analysis waits uncounted with the new payload",
				PendingAnalysis(now.Add(5*time.Minute), json.RawMessage(`{"analysis":"u-1"}`)),
				Item{State: StatePending, NextAttemptAt: now.Add(5 * time.Minute), Payload: json.RawMessage(`{"analysis":"u-1"}`)}, false},
			{"pending analysis keeps the payload", PendingAnalysis(now.Add(time.Minute), nil),
				Item{State: StatePending, NextAttemptAt: now.Add(time.Minute)}, false},
			{"rate limited waits uncounted", RateLimited(now.Add(42 * time.Second)),
				Item{State: StateRetry, NextAttemptAt: now.Add(42 * time.Second), LastError: "rate limited until 2026-03-14T12:00:42Z"}, false},
			{"transient counts and backs off", Transient(errors.New("VirusTotal: 503 Service Unavailable")),
				Item{State: StateRetry, Attempts: 1, NextAttemptAt: now.Add(30 * time.Second), LastError: "VirusTotal: 503 Service Unavailable"}, false},
			{"permanent fails", Permanent(errors.New("VirusTotal: 400 bad hash")),
				Item{State: StateFailed, Attempts: 1, NextAttemptAt: now, LastError: "VirusTotal: 400 bad hash"}, false},
			{"auth error requeues and pauses everything", AuthError(errors.New("VirusTotal: 401 wrong API key")),
				Item{State: StateQueued, NextAttemptAt: now, LastError: "VirusTotal: 401 wrong API key"}, true},
		}
		for i, tt := range tests {
			kind := fmt.Sprintf("case%d", i)
			claimed := claimOne(t, s, kind, "w1")
			if err := s.Complete(ctx, claimed.ID, "w1", tt.outcome); err != nil {
				t.Errorf("%s: Complete: %v", tt.name, err)
				continue
			}
			got := mustGet(t, s, kind, claimed.Key)
			want := tt.want
			want.ID, want.Kind, want.Key, want.CreatedAt, want.UpdatedAt = claimed.ID, kind, claimed.Key, now, now
			if want.Payload == nil {
				want.Payload = claimed.Payload
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: item (-want +got):\n%s", tt.name, diff)
			}
			p, err := s.Paused(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if p.Paused != tt.paused {
				t.Errorf("%s: paused = %v, want %v", tt.name, p.Paused, tt.paused)
			}
			if err := s.Complete(ctx, claimed.ID, "w1", Done(nil)); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s: second Complete = %v, want ErrLeaseLost", tt.name, err)
			}
			if err := s.Resume(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Complete(ctx, 1, "w1", Outcome{}); err == nil {
			t.Error("Complete with the zero Outcome succeeded")
		}
	})
}

func TestTransientBacksOffWithoutEverDropping(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		for _, tt := range []struct {
			name  string
			opts  []Option
			waits []time.Duration
		}{
			{"default 30s doubling to 1h", nil, []time.Duration{
				30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
				16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour, time.Hour}},
			{"configured 1s to 5s", []Option{WithBackoff(time.Second, 5*time.Second)}, []time.Duration{
				time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				clk := newClock()
				s := openStore(t, dsn, append(tt.opts, WithClock(clk.Now))...)
				kind := fmt.Sprintf("backoff-%d", len(tt.waits))
				mustEnqueue(t, s, NewItem{Kind: kind, Key: "x"})
				for i, wait := range tt.waits {
					its, err := s.Claim(ctx, "w", []string{kind}, 1, time.Minute)
					if err != nil || len(its) != 1 {
						t.Fatalf("attempt %d: Claim = %v, %v", i+1, its, err)
					}
					if err := s.Complete(ctx, its[0].ID, "w", Transient(errors.New("timeout"))); err != nil {
						t.Fatal(err)
					}
					it := mustGet(t, s, kind, "x")
					if it.State != StateRetry || it.Attempts != i+1 || it.NextAttemptAt.Sub(clk.Now()) != wait {
						t.Errorf("after failure %d: state %s, attempts %d, wait %s; want retry, %d, %s",
							i+1, it.State, it.Attempts, it.NextAttemptAt.Sub(clk.Now()), i+1, wait)
					}
					clk.Add(wait - time.Millisecond)
					if its, _ := s.Claim(ctx, "w", []string{kind}, 1, time.Minute); len(its) != 0 {
						t.Fatalf("after failure %d: claimed before the backoff ended", i+1)
					}
					clk.Add(time.Millisecond)
				}
			})
		}
	})
}

func TestExpiredLeaseReturnsTheItem(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clk := newClock()
		s := openStore(t, dsn, WithClock(clk.Now))
		it := claimOne(t, s, "k", "w1")
		if its, _ := s.Claim(ctx, "w2", nil, 10, time.Minute); len(its) != 0 {
			t.Fatalf("claimed a leased item: %v", keys(its))
		}
		clk.Add(50 * time.Second)
		if err := s.ExtendLease(ctx, it.ID, "w1", time.Minute); err != nil {
			t.Fatalf("ExtendLease by the owner: %v", err)
		}
		clk.Add(59 * time.Second)
		if its, _ := s.Claim(ctx, "w2", nil, 10, time.Minute); len(its) != 0 {
			t.Fatalf("claimed an item whose lease was extended: %v", keys(its))
		}
		clk.Add(2 * time.Second)
		its, err := s.Claim(ctx, "w2", nil, 10, time.Minute)
		if err != nil || len(its) != 1 {
			t.Fatalf("Claim after the lease expired = %v, %v", its, err)
		}
		if got := its[0]; got.LeaseOwner != "w2" || got.Attempts != 1 || got.LastError != "lease of w1 expired" {
			t.Errorf("reclaimed item: owner %q, attempts %d, last error %q", got.LeaseOwner, got.Attempts, got.LastError)
		}
		before := mustGet(t, s, "k", it.Key)
		for name, err := range map[string]error{
			"Complete":    s.Complete(ctx, it.ID, "w1", Done(json.RawMessage(`{"late":true}`))),
			"ExtendLease": s.ExtendLease(ctx, it.ID, "w1", time.Hour),
		} {
			if !errors.Is(err, ErrLeaseLost) {
				t.Errorf("%s by the old owner = %v, want ErrLeaseLost", name, err)
			}
		}
		if diff := cmp.Diff(before, mustGet(t, s, "k", it.Key)); diff != "" {
			t.Errorf("the old owner changed the item (-before +after):\n%s", diff)
		}
		if err := s.Complete(ctx, it.ID, "w2", Done(nil)); err != nil {
			t.Errorf("Complete by the new owner: %v", err)
		}

		// A lease that expired but nobody claimed is still the owner's.
		late := claimOne(t, s, "k2", "w1")
		clk.Add(time.Hour)
		if err := s.Complete(ctx, late.ID, "w1", NotFound()); err != nil {
			t.Errorf("Complete after an unclaimed expiry: %v", err)
		}
	})
}

func TestCompleteByAnotherOwnerChangesNothing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clk := newClock()
		s := openStore(t, dsn, WithClock(clk.Now))
		it := claimOne(t, s, "k", "w1")
		before := mustGet(t, s, "k", it.Key)
		clk.Add(time.Second)
		for _, o := range []Outcome{Done(nil), NotFound(), Permanent(errors.New("x")), AuthError(errors.New("401"))} {
			if err := s.Complete(ctx, it.ID, "w2", o); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("Complete(%s) by another owner = %v, want ErrLeaseLost", o, err)
			}
		}
		if err := s.Complete(ctx, 424242, "w1", Done(nil)); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("Complete of an unknown item = %v, want ErrLeaseLost", err)
		}
		if diff := cmp.Diff(before, mustGet(t, s, "k", it.Key)); diff != "" {
			t.Errorf("item changed (-before +after):\n%s", diff)
		}
		if p, _ := s.Paused(ctx); p.Paused {
			t.Error("a refused AuthError paused the queue")
		}
	})
}

func TestAuthErrorPausesTheQueueUntilResumed(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clk := newClock()
		var logs bytes.Buffer
		s := openStore(t, dsn, WithClock(clk.Now), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		mustEnqueue(t, s, NewItem{Kind: "k", Key: "a"}, NewItem{Kind: "k", Key: "b"})
		its, err := s.Claim(ctx, "w1", nil, 2, time.Minute)
		if err != nil || len(its) != 2 {
			t.Fatalf("Claim = %v, %v", its, err)
		}
		t0 := clk.Now()
		for _, it := range its { // both workers meet the bad key
			if err := s.Complete(ctx, it.ID, "w1", AuthError(errors.New("VirusTotal: 401 WrongCredentialsError"))); err != nil {
				t.Fatal(err)
			}
			clk.Add(time.Second)
		}
		if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
			t.Errorf("%d error log lines, want one for the pause:\n%s", n, logs.String())
		}
		want := PauseState{Paused: true, Reason: "VirusTotal: 401 WrongCredentialsError", Since: t0}
		if p, err := s.Paused(ctx); err != nil || p != want {
			t.Errorf("Paused = %+v, %v; want %+v", p, err, want)
		}
		clk.Add(time.Hour)
		if its, err := s.Claim(ctx, "w2", nil, 10, time.Minute); len(its) != 0 || err != nil {
			t.Fatalf("Claim while paused = %v, %v; want nothing", keys(its), err)
		}
		st, err := s.Stats(ctx)
		if err != nil || st.Pause != want || st.Count("k", StateQueued) != 2 {
			t.Errorf("Stats while paused = %+v, %v", st, err)
		}
		if err := s.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Paused(ctx); err != nil || p.Paused {
			t.Errorf("Paused after Resume = %+v, %v", p, err)
		}
		its, err = s.Claim(ctx, "w2", nil, 10, time.Minute)
		if err != nil || len(its) != 2 {
			t.Errorf("Claim after Resume = %v, %v; want both items", keys(its), err)
		}

		// An operator's pause works the same way and keeps the first reason.
		if err := s.Pause(ctx, "maintenance"); err != nil {
			t.Fatal(err)
		}
		if err := s.Pause(ctx, "again"); err != nil {
			t.Fatal(err)
		}
		if p, _ := s.Paused(ctx); !p.Paused || p.Reason != "maintenance" {
			t.Errorf("Paused = %+v, want the first reason", p)
		}
	})
}

func TestRequeue(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clk := newClock()
		s := openStore(t, dsn, WithClock(clk.Now))
		finish := func(kind, key string, o Outcome) {
			t.Helper()
			mustEnqueue(t, s, NewItem{Kind: kind, Key: key})
			its, err := s.Claim(ctx, "w", []string{kind}, 1, time.Minute)
			if err != nil || len(its) != 1 {
				t.Fatalf("Claim = %v, %v", its, err)
			}
			if err := s.Complete(ctx, its[0].ID, "w", o); err != nil {
				t.Fatal(err)
			}
		}
		finish("a", "done", Done(json.RawMessage(`{}`)))
		finish("a", "failed", Permanent(errors.New("bad")))
		finish("a", "notfound", NotFound())
		finish("b", "failed", Permanent(errors.New("bad")))
		mustEnqueue(t, s, NewItem{Kind: "a", Key: "open"})

		if _, err := s.Requeue(ctx, StateLeased, ""); err == nil {
			t.Error("Requeue of leased items succeeded")
		}
		clk.Add(time.Hour)
		n, err := s.Requeue(ctx, StateFailed, "a")
		if n != 1 || err != nil {
			t.Errorf("Requeue(failed, a) = %d, %v; want 1", n, err)
		}
		it := mustGet(t, s, "a", "failed")
		if it.State != StateQueued || it.Attempts != 0 || it.LastError != "" || !it.NextAttemptAt.Equal(clk.Now()) {
			t.Errorf("requeued item: %+v", it)
		}
		if n, err := s.Requeue(ctx, "", ""); n != 3 || err != nil {
			t.Errorf("Requeue(any, any) = %d, %v; want 3", n, err)
		}
		st, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Count("", StateQueued) != 5 || st.Open() != 5 {
			t.Errorf("after requeueing everything: %+v", st.Counts)
		}
	})
}

func TestQueueStats(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clk := newClock()
		s := openStore(t, dsn, WithClock(clk.Now))
		st, err := s.Stats(ctx)
		if err != nil || len(st.Counts) != 0 || !st.OldestOpen.IsZero() || st.OldestOpenAge != 0 {
			t.Errorf("Stats of an empty queue = %+v, %v", st, err)
		}
		t0 := clk.Now()
		mustEnqueue(t, s, NewItem{Kind: "cb.binary", Key: "1"})
		clk.Add(time.Minute)
		mustEnqueue(t, s, NewItem{Kind: "cb.binary", Key: "2"}, NewItem{Kind: "cb.binary", Key: "3"}, NewItem{Kind: "opencti.file", Key: "1"})
		its, err := s.Claim(ctx, "w", []string{"cb.binary"}, 2, time.Minute)
		if err != nil || len(its) != 2 {
			t.Fatal(its, err)
		}
		if err := s.Complete(ctx, its[0].ID, "w", Done(nil)); err != nil {
			t.Fatal(err)
		}
		clk.Add(time.Hour)
		st, err = s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []QueueCount{
			{"cb.binary", StateDone, 1}, {"cb.binary", StateLeased, 1}, {"cb.binary", StateQueued, 1},
			{"opencti.file", StateQueued, 1},
		}
		if diff := cmp.Diff(want, st.Counts); diff != "" {
			t.Errorf("Counts (-want +got):\n%s", diff)
		}
		if !st.OldestOpen.Equal(t0.Add(time.Minute)) || st.OldestOpenAge != time.Hour {
			t.Errorf("oldest open item enqueued %v, waiting %s; want %v, 1h", st.OldestOpen, st.OldestOpenAge, t0.Add(time.Minute))
		}
		if st.Open() != 3 || st.Count("cb.binary", "") != 3 {
			t.Errorf("Open() = %d, Count(cb.binary) = %d", st.Open(), st.Count("cb.binary", ""))
		}
	})
}

// Workers in one process share the queue: while leases hold, every item
// is processed exactly once and none is lost.
func TestClaimFromManyGoroutines(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		const items, workers = 300, 6
		s := openStore(t, dsn)
		createSideEffects(t, s)
		batch := make([]NewItem, items)
		for i := range batch {
			batch[i] = NewItem{Kind: "k", Key: fmt.Sprintf("item-%03d", i), Priority: i % 3}
		}
		if n, err := s.EnqueueMany(ctx, batch); n != items || err != nil {
			t.Fatalf("EnqueueMany = %d, %v", n, err)
		}
		var (
			mu        sync.Mutex
			processed = map[string]int{}
			wg        sync.WaitGroup
		)
		for w := range workers {
			owner := fmt.Sprintf("worker-%d", w)
			wg.Go(func() {
				for {
					its, err := s.Claim(ctx, owner, []string{"k"}, 4, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if len(its) == 0 {
						return
					}
					for _, it := range its {
						mu.Lock()
						processed[it.Key]++
						mu.Unlock()
						if err := completeRecording(ctx, s, it, owner, Done(nil)); err != nil {
							t.Error(err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		effects := sideEffectCounts(t, s)
		if len(processed) != items || len(effects) != items {
			t.Errorf("processed %d items, completed %d; want %d", len(processed), len(effects), items)
		}
		for k, n := range processed {
			if n != 1 || effects[k] != 1 {
				t.Errorf("%s processed %d times, completed %d times", k, n, effects[k])
			}
		}
		st, err := s.Stats(ctx)
		if err != nil || st.Count("k", StateDone) != items {
			t.Errorf("Stats = %+v, %v; want %d done", st.Counts, err, items)
		}
	})
}

func TestRequeueOlder(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		clk := newClock()
		s := openStore(t, dsn, WithClock(clk.Now))
		finish := func(key string) {
			t.Helper()
			mustEnqueue(t, s, NewItem{Kind: "k", Key: key})
			its, err := s.Claim(ctx, "w", []string{"k"}, 1, time.Minute)
			if err != nil || len(its) != 1 {
				t.Fatalf("Claim = %v, %v", its, err)
			}
			if err := s.Complete(ctx, its[0].ID, "w", Done(nil)); err != nil {
				t.Fatal(err)
			}
		}
		finish("old")
		clk.Add(48 * time.Hour)
		finish("new")
		n, err := s.RequeueOlder(ctx, StateDone, "k", clk.Now().Add(-24*time.Hour))
		if n != 1 || err != nil {
			t.Fatalf("RequeueOlder = %d, %v; want 1", n, err)
		}
		if it := mustGet(t, s, "k", "old"); it.State != StateQueued {
			t.Errorf("old item state %s, want queued", it.State)
		}
		if it := mustGet(t, s, "k", "new"); it.State != StateDone {
			t.Errorf("new item state %s, want done", it.State)
		}
	})
}

func TestReleaseLeases(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn)
		for _, k := range []string{"a", "b", "c"} {
			mustEnqueue(t, s, NewItem{Kind: "k", Key: k})
		}
		if its, err := s.Claim(ctx, "host1/cb/quick-0", []string{"k"}, 2, time.Hour); err != nil || len(its) != 2 {
			t.Fatalf("Claim = %v, %v", its, err)
		}
		if its, err := s.Claim(ctx, "host2/cb/quick-0", []string{"k"}, 1, time.Hour); err != nil || len(its) != 1 {
			t.Fatalf("Claim = %v, %v", its, err)
		}
		n, err := s.ReleaseLeases(ctx, "host1/cb/")
		if n != 2 || err != nil {
			t.Fatalf("ReleaseLeases = %d, %v; want the 2 of host1", n, err)
		}
		its, err := s.Claim(ctx, "host1/cb/quick-1", []string{"k"}, 5, time.Hour)
		if err != nil || len(its) != 2 {
			t.Fatalf("after release, Claim = %v, %v; want the 2 released items", its, err)
		}
		for _, it := range its {
			if it.Attempts != 0 {
				t.Errorf("released item %s has %d attempts, want 0", it.Key, it.Attempts)
			}
		}
		if _, err := s.ReleaseLeases(ctx, ""); err == nil {
			t.Error("an empty prefix was accepted")
		}
	})
}

// A claim that fails inside its transaction (PostgreSQL sends it as one
// batch with BEGIN and COMMIT) leaves the connection clean for the next
// claim: with one connection, a transaction left open would hold the
// failed claim's state or refuse every later statement.
func TestClaimAfterAFailedClaim(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn, WithMaxConns(1))
		if _, err := s.Enqueue(ctx, NewItem{Kind: "k", Key: "a"}); err != nil {
			t.Fatal(err)
		}
		if s.Dialect() == DialectPostgres {
			// PostgreSQL text cannot hold a NUL byte: the claim
			// statement itself fails, after BEGIN.
			if _, err := s.Claim(ctx, "bad\x00owner", []string{"k"}, 1, time.Minute); err == nil {
				t.Fatal("a claim with a NUL byte in its owner succeeded on PostgreSQL")
			}
		}
		items, err := s.Claim(ctx, "w1", []string{"k"}, 1, time.Minute)
		if err != nil || len(items) != 1 {
			t.Fatalf("claim after a failed one: %d items, %v; want 1", len(items), err)
		}
		if err := s.Complete(ctx, items[0].ID, "w1", Done(nil)); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, items[0].ID, "w1", Done(nil)); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("second Complete: %v; want ErrLeaseLost", err)
		}
	})
}
