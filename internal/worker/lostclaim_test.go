package worker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/store"
)

// lostClaims commits its first n claims but answers them with an error, as
// a connection cut between the database's commit and its answer.
type lostClaims struct {
	*store.Store
	n atomic.Int32
}

func (l *lostClaims) Claim(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]store.Item, error) {
	items, err := l.Store.Claim(ctx, owner, kinds, n, lease)
	if err == nil && len(items) > 0 && l.n.Add(-1) >= 0 {
		return nil, errors.New("read tcp 127.0.0.1:5432: connection reset by peer")
	}
	return items, err
}

// A claim whose answer is lost leaves items leased to a worker that does
// not know it holds them; with a one-hour lease they would wait an hour.
// The worker hands them back before it claims again.
func TestItemsOfALostClaimAreHandedBack(t *testing.T) {
	for _, batch := range []int{0, 4} {
		t.Run(map[int]string{0: "item by item", 4: "batched"}[batch], func(t *testing.T) {
			st := openStore(t)
			keys := []string{"a", "b", "c", "d", "e", "f"}
			enqueue(t, st, "k", keys...)
			q := &lostClaims{Store: st}
			q.n.Store(2)
			var handled atomic.Int32
			ctx, cancel := context.WithCancel(t.Context())
			p := New(q, Config{Name: "t", Owner: "test", Workers: 2, Batch: batch, Lease: time.Hour, Idle: 10 * time.Millisecond},
				func(ctx context.Context, it store.Item) store.Outcome {
					handled.Add(1)
					return store.Done(nil)
				})
			errc := make(chan error, 1)
			go func() { errc <- p.Run(ctx) }()
			deadline := time.Now().Add(30 * time.Second)
			for {
				qs, err := st.Stats(t.Context())
				if err == nil && qs.Count("k", store.StateDone) == int64(len(keys)) {
					break
				}
				if time.Now().After(deadline) {
					cancel()
					<-errc
					t.Fatalf("items of the lost claims were not worked (they wait for their one-hour lease): %+v %v", qs.Counts, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if q.n.Load() >= 0 {
				t.Fatalf("the test lost no claim answer")
			}
			if h := handled.Load(); h != int32(len(keys)) {
				t.Errorf("handled %d times for %d items", h, len(keys))
			}
		})
	}
}
