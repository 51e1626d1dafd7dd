package worker

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/logbuf"
	"github.com/vtconnector/vtconnector/internal/store"
)

// slowRecords returns from CompleteMany some time after its commit, so
// that the lease keeper ticks while the items are done but still held.
type slowRecords struct {
	*store.Store
	after time.Duration
}

func (s slowRecords) CompleteMany(ctx context.Context, cs []store.Completion) ([]error, error) {
	errs, err := s.Store.CompleteMany(ctx, cs)
	time.Sleep(s.after)
	return errs, err
}

// oneClaim lets the pool claim once: what it gives back stays for others.
type oneClaim struct {
	*store.Store
	mu      sync.Mutex
	claimed bool
}

func (o *oneClaim) Claim(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]store.Item, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.claimed {
		return nil, nil
	}
	items, err := o.Store.Claim(ctx, owner, kinds, n, lease)
	o.claimed = len(items) > 0
	return items, err
}

// TestBatchedPoolWarnsOnlyOfLeasesLostWhileWorking: the lease keeper of a
// batched pool finds the lease of an item whose outcome was just recorded
// gone (recording ends it); that is not a lost lease and must not be
// reported as one (it was, hundreds of times an hour, at every keeper
// tick of a busy connector). A lease taken away while the item is worked
// is still reported.
func TestBatchedPoolWarnsOnlyOfLeasesLostWhileWorking(t *testing.T) {
	run := func(t *testing.T, q BatchQueue, n int, h Handler) string {
		t.Helper()
		var logs logbuf.Buffer
		ctx, cancel := context.WithCancel(t.Context())
		var (
			mu   sync.Mutex
			seen int
			done = make(chan struct{})
		)
		p := New(q, Config{Name: "t", Owner: "test", Kinds: []string{"k"}, Workers: 2, Batch: 4,
			Lease: 600 * time.Millisecond, Idle: 10 * time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))},
			func(ctx context.Context, it store.Item) store.Outcome {
				out := h(ctx, it)
				mu.Lock()
				defer mu.Unlock()
				if seen++; seen == n {
					close(done)
				}
				return out
			})
		errc := make(chan error, 1)
		go func() { errc <- p.Run(ctx) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the pool did not work the items")
		}
		time.Sleep(time.Second) // the last recordings, and keeper ticks after them
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return logs.String()
	}

	t.Run("recorded outcomes", func(t *testing.T) {
		st := openStore(t)
		keys := make([]string, 12)
		for i := range keys {
			keys[i] = string(rune('a' + i))
		}
		enqueue(t, st, "k", keys...)
		logs := run(t, slowRecords{st, 450 * time.Millisecond}, len(keys), func(ctx context.Context, it store.Item) store.Outcome {
			return store.Done([]byte(`{}`))
		})
		if strings.Contains(logs, "lease lost") {
			t.Errorf("a lease ended by recording the outcome was reported lost:\n%s", logs)
		}
		for _, k := range keys {
			if it := item(t, st, "k", k); it.State != store.StateDone {
				t.Errorf("item %s is %s", k, it.State)
			}
		}
	})
	t.Run("a lease taken away while working", func(t *testing.T) {
		st := openStore(t)
		enqueue(t, st, "k", "a")
		logs := run(t, &oneClaim{Store: st}, 1, func(ctx context.Context, it store.Item) store.Outcome {
			// Another instance takes the item, as after a lease that
			// expired while this one was cut off.
			if _, err := st.ReleaseOwned(ctx, "test/t", nil); err != nil {
				t.Error(err)
			}
			if got, err := st.Claim(ctx, "thief", []string{"k"}, 1, time.Hour); err != nil || len(got) != 1 {
				t.Errorf("the thief claimed %d items: %v", len(got), err)
			}
			time.Sleep(500 * time.Millisecond) // past a keeper tick
			return store.Done([]byte(`{}`))
		})
		if !strings.Contains(logs, "lease lost while working") {
			t.Errorf("a lease taken away while working was not reported:\n%s", logs)
		}
	})
}
