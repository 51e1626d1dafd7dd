package worker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/store"
)

// runBatched is Run with Config.Batch. One claimer leases items, up to
// Batch at a time, into a buffer the workers take from; one recorder
// commits the outcomes that are ready, up to Batch at a time (while it
// commits, the next ones gather); one keeper renews every lease the pool
// holds. A slot frees when its outcome is committed, so the pool never
// holds more than Workers+Batch leases.
func (p *Pool) runBatched(ctx context.Context, q BatchQueue) {
	owner := p.cfg.Owner + "/" + p.cfg.Name
	slots := p.cfg.Workers + p.cfg.Batch
	work := make(chan store.Item, slots)
	outcomes := make(chan store.Completion, slots)
	free := make(chan struct{}, slots) // one token per free slot
	for range slots {
		free <- struct{}{}
	}
	h := &held{ids: map[int64]bool{}}
	var wg sync.WaitGroup
	for range p.cfg.Workers {
		wg.Go(func() {
			for it := range work {
				outcomes <- store.Completion{ID: it.ID, Owner: owner, Outcome: p.attempt(ctx, owner, it, false)}
			}
		})
	}
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		p.record(ctx, q, outcomes, free, h)
	}()
	kctx, stopKeeper := context.WithCancel(ctx)
	var keeper sync.WaitGroup
	keeper.Go(func() { p.keepLeases(kctx, q, owner, h) })

	unsure := false
	for ctx.Err() == nil {
		select { // one free slot, then every other one, up to Batch
		case <-free:
		case <-ctx.Done():
			continue
		}
		n := 1
	more:
		for n < p.cfg.Batch {
			select {
			case <-free:
				n++
				continue
			default:
			}
			// While the workers have plenty to do, wait to claim a
			// fuller batch: claim at once only when what is left
			// waiting would last them little (a quarter of a round).
			// Claiming as soon as one worker was free made claims of
			// one or two items in steady state: a claim per item.
			if len(work) < max(1, p.cfg.Workers/4) {
				break more
			}
			select {
			case <-free:
				n++
			case <-ctx.Done():
				break more
			}
		}
		if unsure && !p.releaseLost(ctx, q, owner, h.list()) {
			for range n {
				free <- struct{}{}
			}
			_ = retry.Sleep(ctx, p.cfg.Idle)
			continue
		}
		unsure = false
		items, err := q.Claim(ctx, owner, p.cfg.Kinds, n, p.cfg.Lease)
		for range n - len(items) {
			free <- struct{}{}
		}
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("claiming work failed", "worker", owner, "error", err)
			}
			unsure = true // it may have leased items all the same
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
		for _, it := range items {
			h.add(it.ID)
			if p.cfg.OnClaim != nil {
				p.cfg.OnClaim()
			}
			work <- it // never blocks: it has a slot
		}
	}
	close(work) // workers hand back what is left
	wg.Wait()
	close(outcomes)
	<-recorded
	stopKeeper()
	keeper.Wait()
}

// held is the set of items the pool holds leases on: false while worked,
// true once their outcome is being recorded.
type held struct {
	mu  sync.Mutex
	ids map[int64]bool
}

func (h *held) add(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ids[id] = false
}

// recording notes that the outcomes of batch are being recorded: a
// lease found gone then was most likely ended by the recording itself.
func (h *held) recording(batch []store.Completion) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range batch {
		if _, ok := h.ids[c.ID]; ok {
			h.ids[c.ID] = true
		}
	}
}

// worked reports whether id is held and its outcome not being recorded.
func (h *held) worked(id int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	rec, ok := h.ids[id]
	return ok && !rec
}

func (h *held) remove(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.ids, id)
}

func (h *held) list() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]int64, 0, len(h.ids))
	for id := range h.ids {
		out = append(out, id)
	}
	return out
}

// keepLeases renews every held lease each third of the lease.
func (p *Pool) keepLeases(ctx context.Context, q Queue, owner string, h *held) {
	t := time.NewTicker(p.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, id := range h.list() {
			err := q.ExtendLease(ctx, id, owner, p.cfg.Lease)
			switch {
			case err == nil || ctx.Err() != nil:
			case errors.Is(err, store.ErrLeaseLost) && !h.worked(id):
				// Its outcome was recorded meanwhile (which ends the
				// lease); a recording that finds the lease gone says so.
			case errors.Is(err, store.ErrLeaseLost):
				p.log.Warn("lease lost while working; another worker may take the item", "item", id)
			default:
				p.log.Warn("extending a lease failed", "item", id, "error", err)
			}
		}
	}
}

// record commits outcomes as they come: each time, all those that are
// ready (up to Batch). It frees their slots.
func (p *Pool) record(ctx context.Context, q BatchQueue, outcomes <-chan store.Completion, free chan<- struct{}, h *held) {
	batch := make([]store.Completion, 0, p.cfg.Batch)
	for c := range outcomes {
		batch = append(batch[:0], c)
	more:
		for len(batch) < p.cfg.Batch {
			select {
			case c, ok := <-outcomes:
				if !ok {
					break more
				}
				batch = append(batch, c)
			default:
				break more
			}
		}
		h.recording(batch)
		p.recordBatch(ctx, q, batch, func(c store.Completion, err error) {
			if err != nil {
				p.log.Error("recording an outcome failed; the item is retried when its lease expires",
					"item", c.ID, "outcome", c.Outcome.String(), "error", err)
			} else {
				p.log.Debug("item processed", "item", c.ID, "outcome", c.Outcome.String())
			}
			h.remove(c.ID)
			free <- struct{}{}
		})
	}
}

// recordBatch records a batch of outcomes and calls done once for each.
// The database may be away for a moment (a cut connection, a full disk):
// what could not be recorded is tried again while the lease holds, so
// the items finish as soon as it is back instead of when their leases
// expire. A stopping pool tries once.
func (p *Pool) recordBatch(ctx context.Context, q BatchQueue, batch []store.Completion, done func(store.Completion, error)) {
	pending := batch
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Lease)
	defer rcancel()
	err := retry.Until(rctx, retry.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second}, func() error {
		cctx, cancel := context.WithTimeout(rctx, 30*time.Second)
		errs, err := q.CompleteMany(cctx, pending)
		cancel()
		if err != nil {
			return err
		}
		var again []store.Completion
		var first error
		for i, c := range pending {
			if errs[i] == nil || errors.Is(errs[i], store.ErrLeaseLost) {
				done(c, errs[i])
				continue
			}
			again = append(again, c)
			first = cmp.Or(first, errs[i])
		}
		if pending = again; len(pending) > 0 {
			return fmt.Errorf("%d outcomes not recorded: %w", len(pending), first)
		}
		return nil
	}, func(error) bool { return ctx.Err() != nil }, func(err error, wait time.Duration) {
		p.log.Warn("recording outcomes failed; retrying", "items", len(pending), "error", err, "wait", wait)
	})
	for _, c := range pending {
		done(c, err)
	}
}
