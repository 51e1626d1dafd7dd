package carbonblack

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	"github.com/vtconnector/vtconnector/internal/store"
)

// memQueue is the collector's store in memory.
type memQueue struct {
	mu      sync.Mutex
	items   map[string]int // key -> priority
	cursors map[string]string
}

func newMemQueue() *memQueue { return &memQueue{items: map[string]int{}, cursors: map[string]string{}} }

func (q *memQueue) EnqueueMany(_ context.Context, items []store.NewItem) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, it := range items {
		if _, ok := q.items[it.Key]; !ok {
			q.items[it.Key] = it.Priority
			n++
		}
	}
	return n, nil
}

func (q *memQueue) GetCursor(_ context.Context, name string) (string, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	v, ok := q.cursors[name]
	return v, ok, nil
}

func (q *memQueue) SetCursor(_ context.Context, name, value string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.cursors[name] = value
	return nil
}

func (q *memQueue) has(key string) (int, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p, ok := q.items[key]
	return p, ok
}

func (q *memQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func simClient(t *testing.T, sim *fakecb.Server) *Client {
	t.Helper()
	cb, err := NewClient("http://cb.sim", "tok", true, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cb.WithHTTPClient(&http.Client{Transport: &handlerTransport{h: sim}})
	return cb
}

// TestCollectorFindsLateCommittedBinaries: a binary that becomes
// searchable after later-stamped ones were seen is still queued.
func TestCollectorFindsLateCommittedBinaries(t *testing.T) {
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sim := fakecb.New(fakecb.Config{Token: "tok"})
	q := newMemQueue()
	c := NewCollector(simClient(t, sim), q, CollectorConfig{PageSize: 50, Now: func() time.Time { return base }},
		slog.New(slog.DiscardHandler))
	sim.AddSyntheticBinaries(5, base.Add(time.Minute), time.Minute) // live, newest at base+5m
	if n, err := c.Pass(t.Context()); n != 5 || err != nil {
		t.Fatalf("first pass queued %d (%v), want 5", n, err)
	}
	// Committed late: stamped before the newest binary already seen.
	late := sim.AddLateBinaries(2, base.Add(2*time.Minute+30*time.Second))
	n, err := c.LivePass(t.Context())
	if n != 2 || err != nil {
		t.Fatalf("live pass after late commits queued %d (%v), want the 2 late binaries", n, err)
	}
	for _, b := range late {
		if _, ok := q.has(b.MD5); !ok {
			t.Errorf("late binary %s not queued", b.MD5)
		}
	}
}

// TestCollectorQueuesNewBinariesDuringABigBackfill: while the backfill
// walks 100,000 binaries a page at a time, a new binary is queued within
// one sleep_between_batches, ahead of the backlog.
func TestCollectorQueuesNewBinariesDuringABigBackfill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakecb.New(fakecb.Config{Token: "tok"})
		start := time.Now()
		for i := range 100_000 {
			sim.AddBinary(fakecb.Binary{MD5: fmt.Sprintf("%032X", i+1), Size: 1000, ServerAdded: start.Add(time.Duration(i-200_000) * time.Minute)})
		}
		q := newMemQueue()
		const poll = 30 * time.Second
		c := NewCollector(simClient(t, sim), q, CollectorConfig{PageSize: 100, Sleep: poll, BackfillSleep: 10 * time.Second},
			slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = c.Run(ctx); close(done) }()

		time.Sleep(time.Minute) // the backfill is under way
		synctest.Wait()
		if n := q.len(); n == 0 || n >= 100_000 {
			t.Fatalf("%d binaries queued after a minute: want the backfill under way, not done", n)
		}
		added := time.Now()
		nb := fakecb.Binary{MD5: fmt.Sprintf("%032X", 999_999_999), Size: 1000, ServerAdded: added}
		sim.AddBinary(nb)
		time.Sleep(poll) // one sleep_between_batches
		synctest.Wait()
		prio, ok := q.has(nb.MD5)
		if !ok {
			t.Fatalf("a new binary is not queued one poll interval (%s) after it appeared; %d of the backlog queued", poll, q.len())
		}
		if prio != priorityLive {
			t.Errorf("new binary queued with priority %d, want the live priority %d", prio, priorityLive)
		}
		if n := q.len(); n >= 100_000 {
			t.Errorf("the backfill finished (%d queued): the test did not show a new binary overtaking it", n)
		}
		cancel()
		<-done
	})
}
