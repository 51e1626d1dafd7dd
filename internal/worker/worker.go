// Package worker runs durable jobs from the store's work queue, one shape
// for every front: claim an item, keep its lease while a handler works on
// it, record the outcome the handler chose — or hand the item back,
// uncounted, when the pool stops before the handler could finish.
//
// It also owns the one mapping from errors (VirusTotal's, the engine's,
// the queue's) to the queue's explicit outcomes, so that a quota wait, a
// refused key, a refused upload or a flaky network end the same way
// whichever front met them.
//
// It imports the store and the engine, never a front.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/store"
)

// Queue is the part of the store a pool works from.
type Queue interface {
	Claim(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]store.Item, error)
	ExtendLease(ctx context.Context, id int64, owner string, lease time.Duration) error
	Complete(ctx context.Context, id int64, owner string, o store.Outcome) error
}

// Handler works one item and says how its attempt ended. It must return
// when ctx ends; whatever it returns then is replaced by a hand-back.
type Handler func(ctx context.Context, it store.Item) store.Outcome

// Config shapes a Pool.
type Config struct {
	// Name labels the pool's workers in leases and logs, e.g. "quick".
	Name string
	// Owner is the process's lease owner prefix, stable across restarts
	// (e.g. "host/carbonblack"); worker i leases as Owner/Name-i.
	Owner string
	// Kinds are the item kinds claimed (none: any).
	Kinds []string
	// Workers is the number of items worked on at once (default 1).
	Workers int
	// Lease is how long a claim holds an item; it is renewed every third
	// of it while the handler works (default 2 minutes).
	Lease time.Duration
	// Idle is the wait when nothing is ready, cut short by Wake (default 5 s).
	Idle time.Duration
	// OnIdle, when set, is called each time a worker finds nothing to do
	// (e.g. to report a paused queue).
	OnIdle func(ctx context.Context)
	// OnClaim, when set, is called each time a worker got an item.
	OnClaim func()
	// Batch, above 1, has the pool claim up to that many items at once
	// (holding up to Workers+Batch leased items: those being worked and
	// those waiting for a worker) and record the outcomes that are ready,
	// up to that many, in one transaction, when the queue can
	// (BatchQueue): a commit for many items instead of two per item. The
	// pool's leases are then held as Owner/Name and renewed together.
	// Default 1: each worker claims and completes its own items.
	Batch int
	Log   *slog.Logger
}

// BatchQueue is a Queue that records several outcomes at once (see
// store.Store.CompleteMany).
type BatchQueue interface {
	Queue
	CompleteMany(ctx context.Context, cs []store.Completion) ([]error, error)
}

// Pool is a set of workers over one queue.
type Pool struct {
	q   Queue
	cfg Config
	h   Handler
	log *slog.Logger

	kickMu sync.Mutex
	kick   chan struct{} // closed (and replaced) by Wake
}

// New returns a pool; Run starts it.
func New(q Queue, cfg Config, h Handler) *Pool {
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 5 * time.Second
	}
	if cfg.Name == "" {
		cfg.Name = "worker"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Pool{q: q, cfg: cfg, h: h, log: cfg.Log, kick: make(chan struct{})}
}

// Wake wakes idle workers at once, e.g. after new work was queued.
func (p *Pool) Wake() {
	p.kickMu.Lock()
	defer p.kickMu.Unlock()
	close(p.kick)
	p.kick = make(chan struct{})
}

// Run runs the workers until ctx ends. Items in flight then are handed
// back to the queue, ready for the next run.
func (p *Pool) Run(ctx context.Context) error {
	if bq, ok := p.q.(BatchQueue); ok && p.cfg.Batch > 1 {
		p.runBatched(ctx, bq)
		return nil
	}
	var wg sync.WaitGroup
	for i := range p.cfg.Workers {
		wg.Go(func() { p.loop(ctx, fmt.Sprintf("%s/%s-%d", p.cfg.Owner, p.cfg.Name, i)) })
	}
	wg.Wait()
	return nil
}

func (p *Pool) loop(ctx context.Context, owner string) {
	unsure := false // a claim failed: it may have leased items all the same
	for ctx.Err() == nil {
		if unsure && !p.releaseLost(ctx, p.q, owner, nil) {
			_ = retry.Sleep(ctx, p.cfg.Idle)
			continue
		}
		unsure = false
		items, err := p.q.Claim(ctx, owner, p.cfg.Kinds, 1, p.cfg.Lease)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("claiming work failed", "worker", owner, "error", err)
			}
			unsure = true
			_ = retry.Sleep(ctx, p.cfg.Idle)
			continue
		}
		if len(items) == 0 {
			if p.cfg.OnIdle != nil {
				p.cfg.OnIdle(ctx)
			}
			p.idle(ctx)
			continue
		}
		if p.cfg.OnClaim != nil {
			p.cfg.OnClaim()
		}
		p.Work(ctx, owner, items[0])
	}
}

// ownerReleaser is the part of the store that hands back what a claim
// leased when its answer was lost (store.ReleaseOwned).
type ownerReleaser interface {
	ReleaseOwned(ctx context.Context, owner string, keep []int64) (int64, error)
}

// releaseLost hands back the items leased to owner but unknown to it,
// those of a claim whose answer never came back (the connection cut after
// the commit): without it they would wait for their lease to expire. keep
// lists what owner still works. It reports whether claiming may go on: a
// store that cannot release is trusted to the lease expiry.
func (p *Pool) releaseLost(ctx context.Context, q any, owner string, keep []int64) bool {
	r, ok := q.(ownerReleaser)
	if !ok {
		return true
	}
	n, err := r.ReleaseOwned(ctx, owner, keep)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("handing back the leases of a failed claim failed; trying again before the next claim", "worker", owner, "error", err)
		}
		return false
	}
	if n > 0 {
		p.log.Info("handed back items leased by a claim whose answer was lost", "worker", owner, "items", n)
	}
	return true
}

func (p *Pool) idle(ctx context.Context) {
	p.kickMu.Lock()
	k := p.kick
	p.kickMu.Unlock()
	t := time.NewTimer(p.cfg.Idle)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-k:
	}
}

// Work runs the handler on an item owner has claimed, renewing the lease
// meanwhile, and records the outcome: the handler's, or a hand-back when
// ctx ended first.
func (p *Pool) Work(ctx context.Context, owner string, it store.Item) {
	out := p.attempt(ctx, owner, it, true)
	// The database may be away for a moment (a cut connection, a full
	// disk): recording the outcome is retried while the lease holds, so
	// that the item finishes as soon as the database is back instead of
	// when its lease expires. A stopping pool tries once.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Lease)
	defer rcancel()
	err := retry.Until(rctx, retry.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second}, func() error {
		cctx, ccancel := context.WithTimeout(rctx, 30*time.Second)
		defer ccancel()
		return p.q.Complete(cctx, it.ID, owner, out)
	}, func(err error) bool { return ctx.Err() != nil || errors.Is(err, store.ErrLeaseLost) }, func(err error, wait time.Duration) {
		p.log.Warn("recording an outcome failed; retrying", "kind", it.Kind, "key", it.Key, "outcome", out.String(), "error", err, "wait", wait)
	})
	if err != nil {
		p.log.Error("recording an outcome failed; the item is retried when its lease expires",
			"kind", it.Kind, "key", it.Key, "outcome", out.String(), "error", err)
		return
	}
	p.log.Debug("item processed", "kind", it.Kind, "key", it.Key, "outcome", out.String())
}

// attempt runs the handler on an item owner has claimed, renewing the
// lease meanwhile, and returns the outcome to record: the handler's, or a
// hand-back when ctx ended first.
func (p *Pool) attempt(ctx context.Context, owner string, it store.Item, keepLease bool) store.Outcome {
	if ctx.Err() != nil {
		return store.HandBack()
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if keepLease {
		go p.keepLease(wctx, owner, it.ID)
	}
	out := p.run(wctx, it)
	if ctx.Err() != nil {
		out = store.HandBack()
	}
	return out
}

// completeContext bounds the recording of outcomes, which goes on after
// ctx ended (hand-backs at shutdown).
func completeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// run calls the handler, turning a panic into a permanent failure of
// that item instead of a crash of the daemon.
func (p *Pool) run(ctx context.Context, it store.Item) (out store.Outcome) {
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("handler panicked; the item is marked failed", "kind", it.Kind, "key", it.Key, "panic", fmt.Sprint(r))
			out = store.Permanent(fmt.Errorf("internal error while processing: %v", r))
		}
	}()
	return p.h(ctx, it)
}

func (p *Pool) keepLease(ctx context.Context, owner string, id int64) {
	t := time.NewTicker(p.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.q.ExtendLease(ctx, id, owner, p.cfg.Lease); err != nil && ctx.Err() == nil {
				if errors.Is(err, store.ErrLeaseLost) {
					p.log.Warn("lease lost while working; another worker may take the item", "item", id)
					continue
				}
				p.log.Warn("extending a lease failed", "item", id, "error", err)
			}
		}
	}
}
