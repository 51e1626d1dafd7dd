package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// groupWriter runs a process's SQLite writes one after the other on one
// goroutine, and commits together the writes that queued while the
// previous commit was in flight (group commit). SQLite runs one writer at
// a time whatever we do, and with synchronous=FULL each commit costs a
// sync of the disk (about a millisecond on a virtual disk); many workers
// each committing a small write would be bound by that alone.
//
// Each write keeps the meaning of a transaction of its own: it runs in a
// savepoint of the shared transaction, so that a write that fails is
// undone alone, and it is reported done only once the shared transaction
// committed. A write that fails to commit (the commit itself failed, or
// SQLite rolled the whole transaction back, as it does when a statement
// of an explicit transaction is interrupted) is reported failed, never
// done. A write whose context ended before its turn does not run.
type groupWriter struct {
	db   *sql.DB
	reqs chan *writeReq
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// maxGroup bounds the writes one commit takes.
const maxGroup = 128

type writeReq struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	res  chan writeResult // buffered: the writer never waits for the caller
	err  error            // fn's outcome, until the commit
	pan  any              // fn's panic value, re-raised in the caller
	pani bool
}

type writeResult struct {
	err      error
	pan      any
	panicked bool
}

// errStoreClosed is returned by writes after Close.
var errStoreClosed = errors.New("store closed")

func newGroupWriter(db *sql.DB) *groupWriter {
	g := &groupWriter{db: db, reqs: make(chan *writeReq), quit: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g
}

// do runs fn in a writing transaction, perhaps shared with other writes,
// and returns once its changes are committed, or with the error that
// kept them out. A panic in fn is raised again here.
func (g *groupWriter) do(ctx context.Context, fn func(*sql.Tx) error) error {
	r := &writeReq{ctx: ctx, fn: fn, res: make(chan writeResult, 1)}
	select {
	case g.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-g.quit:
		return errStoreClosed
	}
	// fn may run at any moment now: wait for it whatever ctx says, as it
	// may write to the caller's variables.
	res := <-r.res
	if res.panicked {
		panic(res.pan)
	}
	return res.err
}

func (g *groupWriter) close() {
	g.once.Do(func() { close(g.quit) })
	<-g.done
}

func (g *groupWriter) run() {
	defer close(g.done)
	batch := make([]*writeReq, 0, maxGroup)
	for {
		select {
		case r := <-g.reqs:
			batch = append(batch[:0], r)
		case <-g.quit:
			return
		}
	more:
		for len(batch) < maxGroup {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		for len(batch) > 0 {
			batch = g.commit(batch)
		}
	}
}

// commit runs the writes of batch in one transaction and reports to
// each. When SQLite rolled the transaction back under a write, the writes
// not yet run are returned, for another transaction.
func (g *groupWriter) commit(batch []*writeReq) (notRun []*writeReq) {
	ctx := context.Background() // the transaction is no caller's
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		for _, r := range batch {
			r.res <- writeResult{err: err}
		}
		return nil
	}
	shared := len(batch) > 1
	ran := 0
	var lost error // the transaction was rolled back under a write
	for _, r := range batch {
		ran++
		if err := r.ctx.Err(); err != nil {
			r.err = err
			continue
		}
		if shared {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT vtc_write"); err != nil {
				r.err, lost = err, err
				break
			}
		}
		r.err, r.pan, r.pani = call(r.fn, tx)
		failed := r.err != nil || r.pani
		if !shared {
			if failed {
				_ = tx.Rollback()
				r.res <- writeResult{err: r.err, pan: r.pan, panicked: r.pani}
				return nil
			}
			break
		}
		// A savepoint that is gone means SQLite rolled the whole
		// transaction back (an interrupted statement, say).
		if failed {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO vtc_write"); err != nil {
				lost = err
				break
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE vtc_write"); err != nil {
			lost = err
			break
		}
	}
	if lost != nil {
		_ = tx.Rollback()
		for _, r := range batch[:ran] {
			err := r.err
			if err == nil {
				err = fmt.Errorf("shared write transaction rolled back: %w", lost)
			}
			r.res <- writeResult{err: err, pan: r.pan, panicked: r.pani}
		}
		return batch[ran:]
	}
	cerr := tx.Commit()
	for _, r := range batch {
		err := r.err
		if err == nil && !r.pani && cerr != nil {
			err = cerr
		}
		r.res <- writeResult{err: err, pan: r.pan, panicked: r.pani}
	}
	return nil
}

// call runs fn, turning a panic into a value.
func call(fn func(*sql.Tx) error, tx *sql.Tx) (err error, pan any, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			pan, panicked = p, true
		}
	}()
	return fn(tx), nil, false
}
