package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vtconnector/vtconnector/internal/store"
)

// countingQueue is the store, telling when n outcomes were committed and
// remembering the largest claim and commit it saw.
type countingQueue struct {
	*store.Store
	mu                  sync.Mutex
	committed, n        int
	allDone             chan struct{}
	maxClaim, maxCommit int
}

func (q *countingQueue) Claim(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]store.Item, error) {
	its, err := q.Store.Claim(ctx, owner, kinds, n, lease)
	q.mu.Lock()
	q.maxClaim = max(q.maxClaim, len(its))
	q.mu.Unlock()
	return its, err
}

func (q *countingQueue) CompleteMany(ctx context.Context, cs []store.Completion) ([]error, error) {
	errs, err := q.Store.CompleteMany(ctx, cs)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.maxCommit = max(q.maxCommit, len(cs))
	if err == nil {
		q.committed += len(cs)
		if q.committed == q.n {
			close(q.allDone)
		}
	}
	return errs, err
}

func TestBatchedPoolWorksEveryItemOnce(t *testing.T) {
	st := openStore(t)
	const n = 60
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprint(i))
	}
	enqueue(t, st, "k", keys...)
	enqueue(t, st, "other", "x")
	q := &countingQueue{Store: st, n: n, allDone: make(chan struct{})}
	var mu sync.Mutex
	seen := map[string]int{}
	release := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	p := New(q, Config{Name: "t", Owner: "test", Kinds: []string{"k"}, Workers: 4, Batch: 8, Idle: time.Hour},
		func(ctx context.Context, it store.Item) store.Outcome {
			<-release
			mu.Lock()
			seen[it.Key]++
			mu.Unlock()
			switch it.Key {
			case "3":
				return store.NotFound()
			case "5":
				return store.Permanent(errors.New("bad"))
			}
			return store.Done([]byte(`{"ok":true}`))
		})
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	close(release)
	<-q.allDone
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if seen[k] != 1 {
			t.Errorf("item %s handled %d times", k, seen[k])
		}
	}
	qs, err := st.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if qs.Count("k", store.StateDone) != n-2 || qs.Count("k", store.StateNotFound) != 1 || qs.Count("k", store.StateFailed) != 1 {
		t.Errorf("states %+v", qs.Counts)
	}
	if it := item(t, st, "other", "x"); it.State != store.StateQueued {
		t.Errorf("an item of another kind was claimed: %s", it.State)
	}
	if q.maxClaim > 8 {
		t.Errorf("a claim of %d items, batch 8", q.maxClaim)
	}
	if q.maxCommit > 8 {
		t.Errorf("a commit of %d outcomes, batch 8", q.maxCommit)
	}
}

func TestBatchedPoolHandsBackAtShutdown(t *testing.T) {
	st := openStore(t)
	enqueue(t, st, "k", "a", "b", "c")
	started := make(chan struct{}, 3)
	ctx, cancel := context.WithCancel(t.Context())
	p := New(st, Config{Owner: "test", Kinds: []string{"k"}, Workers: 3, Batch: 3, Idle: time.Hour},
		func(ctx context.Context, it store.Item) store.Outcome {
			started <- struct{}{}
			<-ctx.Done()
			return store.Transient(errors.New("interrupted"))
		})
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	for range 3 {
		<-started
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if it := item(t, st, "k", k); it.State != store.StateQueued || it.Attempts != 0 {
			t.Errorf("item %s after shutdown: state %s, %d attempts; want queued, 0", k, it.State, it.Attempts)
		}
	}
}

// memQueue is an in-memory BatchQueue that records the size of each claim.
type memQueue struct {
	mu      sync.Mutex
	ready   []store.Item
	claims  []int
	done    map[int64]int
	total   int
	allDone chan struct{}
}

func (q *memQueue) Claim(_ context.Context, _ string, _ []string, n int, _ time.Duration) ([]store.Item, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, len(q.ready))
	its := append([]store.Item(nil), q.ready[:n]...)
	q.ready = q.ready[n:]
	if n > 0 {
		q.claims = append(q.claims, n)
	}
	return its, nil
}

func (q *memQueue) ExtendLease(context.Context, int64, string, time.Duration) error { return nil }

func (q *memQueue) Complete(ctx context.Context, id int64, owner string, o store.Outcome) error {
	_, err := q.CompleteMany(ctx, []store.Completion{{ID: id, Owner: owner, Outcome: o}})
	return err
}

func (q *memQueue) CompleteMany(_ context.Context, cs []store.Completion) ([]error, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, c := range cs {
		q.done[c.ID]++
		if len(q.done) == q.total && q.done[c.ID] == 1 {
			close(q.allDone)
		}
	}
	return make([]error, len(cs)), nil
}

// TestBatchedPoolClaimsFullBatchesWhileBusy: workers whose items take a
// while are fed by claims of many items, not by a claim each time one of
// them is free.
func TestBatchedPoolClaimsFullBatchesWhileBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, workers, batch = 2000, 16, 16
		q := &memQueue{done: map[int64]int{}, total: n, allDone: make(chan struct{})}
		for i := range n {
			q.ready = append(q.ready, store.Item{ID: int64(i + 1), Kind: "k", Key: fmt.Sprint(i)})
		}
		ctx, cancel := context.WithCancel(t.Context())
		p := New(q, Config{Name: "t", Owner: "test", Kinds: []string{"k"}, Workers: workers, Batch: batch, Idle: time.Hour},
			func(ctx context.Context, it store.Item) store.Outcome {
				time.Sleep(time.Duration(40+it.ID%23) * time.Millisecond) // a lookup
				return store.Done(nil)
			})
		errc := make(chan error, 1)
		go func() { errc <- p.Run(ctx) }()
		<-q.allDone
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		for id, times := range q.done {
			if times != 1 {
				t.Errorf("item %d completed %d times", id, times)
			}
		}
		if mean := float64(n) / float64(len(q.claims)); mean < batch/2 {
			t.Errorf("%d claims for %d items (%.1f a claim), want at least %d a claim", len(q.claims), n, mean, batch/2)
		}
	})
}
