package worker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func enqueue(t *testing.T, st *store.Store, kind string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := st.Enqueue(t.Context(), store.NewItem{Kind: kind, Key: k}); err != nil {
			t.Fatal(err)
		}
	}
}

func item(t *testing.T, st *store.Store, kind, key string) store.Item {
	t.Helper()
	it, ok, err := st.GetItem(context.Background(), kind, key)
	if err != nil || !ok {
		t.Fatalf("item %s %s: %v %v", kind, key, ok, err)
	}
	return it
}

func TestPoolWorksEveryItemOnceWithTheHandlersOutcome(t *testing.T) {
	st := openStore(t)
	enqueue(t, st, "k", "a", "b", "c", "d", "e", "f")
	enqueue(t, st, "other", "x") // another kind: not claimed
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	p := New(st, Config{Name: "t", Owner: "test", Kinds: []string{"k"}, Workers: 3, Idle: 10 * time.Millisecond},
		func(ctx context.Context, it store.Item) store.Outcome {
			mu.Lock()
			defer mu.Unlock()
			seen[it.Key]++
			if len(seen) == 6 {
				close(done)
			}
			if it.Key == "c" {
				return store.NotFound()
			}
			return store.Done([]byte(`{"ok":true}`))
		})
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pool did not work the items")
	}
	// Wait until every outcome is recorded, then stop.
	deadline := time.Now().Add(10 * time.Second)
	for {
		qs, err := st.Stats(t.Context())
		if err == nil && qs.Count("k", store.StateDone) == 5 && qs.Count("k", store.StateNotFound) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outcomes not recorded: %+v %v", qs.Counts, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("item %s handled %d times", k, n)
		}
	}
	if it := item(t, st, "other", "x"); it.State != store.StateQueued {
		t.Errorf("an item of another kind was claimed: %s", it.State)
	}
	if it := item(t, st, "k", "a"); string(it.Result) != `{"ok":true}` {
		t.Errorf("result %q not stored", it.Result)
	}
}

func TestShutdownHandsTheItemBackUncounted(t *testing.T) {
	st := openStore(t)
	enqueue(t, st, "k", "slow")
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	p := New(st, Config{Owner: "test", Kinds: []string{"k"}, Idle: 10 * time.Millisecond},
		func(ctx context.Context, it store.Item) store.Outcome {
			close(started)
			<-ctx.Done()
			// A handler that ignores the shutdown and claims a failure.
			return store.Transient(errors.New("interrupted"))
		})
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	<-started
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	it := item(t, st, "k", "slow")
	if it.State != store.StateQueued || it.Attempts != 0 || !it.NextAttemptAt.Before(time.Now().Add(time.Second)) {
		t.Errorf("after shutdown: state %s, attempts %d, next %s; want queued, 0 attempts, ready now", it.State, it.Attempts, it.NextAttemptAt)
	}
	// The next run takes it at once.
	got := make(chan string, 1)
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	p2 := New(st, Config{Owner: "test", Kinds: []string{"k"}, Idle: 10 * time.Millisecond},
		func(ctx context.Context, it store.Item) store.Outcome {
			select {
			case got <- it.Key:
			default:
			}
			return store.Done(nil)
		})
	go func() { errc <- p2.Run(ctx2) }()
	select {
	case k := <-got:
		if k != "slow" {
			t.Errorf("claimed %q", k)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handed-back item was not claimed again")
	}
	cancel2()
	<-errc
}

func TestPanicFailsTheItemAndTheWorkerGoesOn(t *testing.T) {
	st := openStore(t)
	enqueue(t, st, "k", "boom", "fine")
	var handled atomic.Int32
	fine := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	p := New(st, Config{Owner: "test", Kinds: []string{"k"}, Idle: 10 * time.Millisecond},
		func(ctx context.Context, it store.Item) store.Outcome {
			handled.Add(1)
			if it.Key == "boom" {
				panic("handler bug")
			}
			close(fine)
			return store.Done(nil)
		})
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	select {
	case <-fine:
	case <-time.After(30 * time.Second):
		t.Fatal("the worker stopped after a panic")
	}
	cancel()
	<-errc
	it := item(t, st, "k", "boom")
	if it.State != store.StateFailed || it.LastError == "" {
		t.Errorf("panicking item: state %s, error %q; want failed with the reason", it.State, it.LastError)
	}
}

// extendCounter is a Queue that tells each lease renewal.
type extendCounter struct {
	*store.Store
	extended chan struct{}
}

func (q extendCounter) ExtendLease(ctx context.Context, id int64, owner string, lease time.Duration) error {
	err := q.Store.ExtendLease(ctx, id, owner, lease)
	if err == nil {
		select {
		case q.extended <- struct{}{}:
		default:
		}
	}
	return err
}

func TestLeaseIsKeptWhileTheHandlerWorks(t *testing.T) {
	st := openStore(t)
	enqueue(t, st, "k", "long")
	q := extendCounter{st, make(chan struct{}, 1)}
	release := make(chan struct{})
	started := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const lease = 300 * time.Millisecond
	p := New(q, Config{Owner: "test", Kinds: []string{"k"}, Lease: lease, Idle: 10 * time.Millisecond},
		func(ctx context.Context, it store.Item) store.Outcome {
			started <- it.LeaseUntil
			<-release
			return store.Done(nil)
		})
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	first := <-started
	// Three renewals: the lease now ends later than the claim's did, and
	// no other worker can take the item.
	for range 3 {
		select {
		case <-q.extended:
		case <-time.After(30 * time.Second):
			t.Fatal("the lease was not renewed while the handler worked")
		}
	}
	it := item(t, st, "k", "long")
	if it.State != store.StateLeased || !it.LeaseUntil.After(first) {
		t.Errorf("lease until %s (state %s), want later than the claim's %s", it.LeaseUntil, it.State, first)
	}
	if got, err := st.Claim(t.Context(), "intruder", []string{"k"}, 1, time.Minute); err != nil || len(got) > 0 {
		t.Errorf("another worker claimed the item under renewal (%d, %v)", len(got), err)
	}
	close(release)
	cancel()
	<-errc
}

func TestOutcomeMapsErrorsToExplicitOutcomes(t *testing.T) {
	ctx := t.Context()
	reset := time.Now().Add(time.Hour)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"no error", ctx, nil, "done"},
		{"quota", ctx, fmt.Errorf("x: %w", &engine.QuotaExhaustedError{Window: "day", ResetAt: reset}), "rate limited"},
		{"bad key", ctx, fmt.Errorf("x: %w", vt.ErrAuth), "auth error"},
		{"refused upload", ctx, &engine.UploadRefusedError{Reason: engine.RefusedSize, Detail: "big"}, "permanent error"},
		{"bad request", ctx, fmt.Errorf("x: %w", vt.ErrBadRequest), "permanent error"},
		{"forbidden", ctx, fmt.Errorf("x: %w", vt.ErrForbidden), "permanent error"},
		{"too large", ctx, fmt.Errorf("x: %w", vt.ErrTooLarge), "permanent error"},
		{"transient", ctx, fmt.Errorf("x: %w", vt.ErrTransient), "transient error"},
		{"deadline", ctx, fmt.Errorf("x: %w", vt.ErrDeadlineExceeded), "transient error"},
		{"not yet", ctx, fmt.Errorf("x: %w", vt.ErrNotAvailableYet), "rate limited"},
		{"shutdown", canceled, errors.New("whatever"), "handed back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Outcome(tc.ctx, tc.err).String(); got != tc.want {
				t.Errorf("Outcome(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

// flakyComplete fails the first n Complete calls, as a database that is
// cut or full for a moment does.
type flakyComplete struct {
	*store.Store
	n atomic.Int32
}

func (f *flakyComplete) Complete(ctx context.Context, id int64, owner string, o store.Outcome) error {
	if f.n.Add(-1) >= 0 {
		return errors.New("database is locked: disk full")
	}
	return f.Store.Complete(ctx, id, owner, o)
}

func TestOutcomeIsRecordedOnceTheDatabaseIsBack(t *testing.T) {
	st := openStore(t)
	enqueue(t, st, "k", "a")
	q := &flakyComplete{Store: st}
	q.n.Store(3)
	p := New(q, Config{Name: "t", Owner: "test", Lease: time.Hour}, func(ctx context.Context, it store.Item) store.Outcome {
		return store.Done([]byte(`{"ok":true}`))
	})
	items, err := st.Claim(t.Context(), "test/t-0", nil, 1, time.Hour)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim: %v %v", items, err)
	}
	p.Work(t.Context(), "test/t-0", items[0])
	if it := item(t, st, "k", "a"); it.State != store.StateDone {
		t.Errorf("after 3 failed recordings: state %s, want done (recorded when the database came back, not after the one-hour lease)", it.State)
	}
	if n := q.n.Load(); n >= 0 {
		t.Errorf("Complete was not retried until it succeeded (%d failures left)", n)
	}
}

// flakyCompleteMany fails its first n batch recordings, as a database that
// is away for a moment.
type flakyCompleteMany struct {
	*store.Store
	n atomic.Int32
}

func (f *flakyCompleteMany) CompleteMany(ctx context.Context, cs []store.Completion) ([]error, error) {
	if f.n.Add(-1) >= 0 {
		return nil, errors.New("connection reset by peer")
	}
	return f.Store.CompleteMany(ctx, cs)
}

func TestBatchedOutcomesAreRecordedOnceTheDatabaseIsBack(t *testing.T) {
	st := openStore(t)
	q := &flakyCompleteMany{Store: st}
	q.n.Store(3)
	p := New(q, Config{Name: "b", Owner: "test", Lease: time.Hour, Batch: 4}, nil)
	for _, k := range []string{"a", "b"} {
		enqueue(t, st, "k", k)
	}
	items, err := st.Claim(t.Context(), "test/b", nil, 2, time.Hour)
	if err != nil || len(items) != 2 {
		t.Fatalf("claim: %v %v", items, err)
	}
	var cs []store.Completion
	for _, it := range items {
		cs = append(cs, store.Completion{ID: it.ID, Owner: "test/b", Outcome: store.Done(nil)})
	}
	done := 0
	p.recordBatch(t.Context(), q, cs, func(c store.Completion, err error) {
		if err != nil {
			t.Errorf("item %d: %v", c.ID, err)
		}
		done++
	})
	if done != 2 {
		t.Errorf("done called %d times, want once per item", done)
	}
	for _, k := range []string{"a", "b"} {
		if it := item(t, st, "k", k); it.State != store.StateDone {
			t.Errorf("%s: state %s, want done once the database came back (not after the one-hour lease)", k, it.State)
		}
	}
}
