package worker

import (
	"github.com/vtconnector/vtconnector/internal/store/storetest"

	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/store"
)

// doneQueue tells when n outcomes were committed, by either path.
type doneQueue struct {
	*store.Store
	mu              sync.Mutex
	left            int
	allDone         chan struct{}
	claims, commits int
}

func (q *doneQueue) Claim(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]store.Item, error) {
	its, err := q.Store.Claim(ctx, owner, kinds, n, lease)
	if len(its) > 0 {
		q.mu.Lock()
		q.claims++
		q.mu.Unlock()
	}
	return its, err
}

func (q *doneQueue) count(k int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.left -= k
	q.commits++
	if q.left == 0 {
		close(q.allDone)
	}
}

func (q *doneQueue) Complete(ctx context.Context, id int64, owner string, o store.Outcome) error {
	err := q.Store.Complete(ctx, id, owner, o)
	if err == nil {
		q.count(1)
	}
	return err
}

func (q *doneQueue) CompleteMany(ctx context.Context, cs []store.Completion) ([]error, error) {
	errs, err := q.Store.CompleteMany(ctx, cs)
	if err == nil {
		q.count(len(cs))
	}
	return errs, err
}

// plainQueue hides CompleteMany: the pool works item by item.
type plainQueue struct{ *doneQueue }

func (plainQueue) CompleteMany() {}

// benchPostgresDSN is a fresh schema in VTC_TEST_POSTGRES_DSN's database.
func benchPostgresDSN(b *testing.B) string {
	return storetest.PostgresDSN(b, "vtc_bench", "")
}

// BenchmarkPool: b.N queued items worked by a pool of 4 workers whose
// handler answers at once, item by item (batch=1: a claim and a complete
// per item) and in batches (batch=16); items/s from the start to the
// last outcome committed. It measures the queue, not VirusTotal.
func BenchmarkPool(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, batch := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/workers=4/batch=%d", backend, batch), func(b *testing.B) {
				dsn := filepath.Join(b.TempDir(), "bench.db")
				if backend == "postgres" {
					dsn = benchPostgresDSN(b)
				}
				st, err := store.Open(context.Background(), dsn)
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				items := make([]store.NewItem, 0, 1000)
				for i := range b.N {
					items = append(items, store.NewItem{Kind: "bench", Key: strconv.Itoa(i), Payload: []byte(`{"md5":"44D88612FEA8A8F36DE82E1278ABB02F"}`)})
					if len(items) == cap(items) || i == b.N-1 {
						if _, err := st.EnqueueMany(context.Background(), items); err != nil {
							b.Fatal(err)
						}
						items = items[:0]
					}
				}
				dq := &doneQueue{Store: st, left: b.N, allDone: make(chan struct{})}
				var q Queue = dq
				if batch == 1 {
					q = plainQueue{dq}
				}
				ctx, cancel := context.WithCancel(context.Background())
				p := New(q, Config{Owner: "bench", Kinds: []string{"bench"}, Workers: 4, Batch: batch, Idle: time.Second},
					func(context.Context, store.Item) store.Outcome { return store.Done(nil) })
				b.ResetTimer()
				errc := make(chan error, 1)
				go func() { errc <- p.Run(ctx) }()
				<-dq.allDone
				b.StopTimer()
				cancel()
				<-errc
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
				b.ReportMetric(float64(b.N)/float64(dq.claims), "items/claim")
				b.ReportMetric(float64(b.N)/float64(dq.commits), "items/commit")
			})
		}
	}
}
