package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

// putCursor is a write of a group: it inserts cursor name.
func putCursor(name string) func(*sql.Tx) error {
	return func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO cursors (name, value, updated_at) VALUES ($1, 'v', 0)`, name)
		return err
	}
}

func cursorsPresent(t *testing.T, s *Store, names ...string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, n := range names {
		_, ok, err := s.GetCursor(context.Background(), n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = ok
	}
	return out
}

func newReq(ctx context.Context, fn func(*sql.Tx) error) *writeReq {
	return &writeReq{ctx: ctx, fn: fn, res: make(chan writeResult, 1)}
}

// TestGroupCommitIsolatesWrites: in one shared transaction, a write that
// fails or panics is undone alone, a write whose context ended does not
// run, and the others are committed.
func TestGroupCommitIsolatesWrites(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "g.db"))
	boom := errors.New("boom")
	done, cancel := context.WithCancel(context.Background())
	cancel()
	ranCanceled := false
	bg := context.Background()
	batch := []*writeReq{
		newReq(bg, putCursor("a")),
		newReq(bg, func(tx *sql.Tx) error {
			if err := putCursor("b")(tx); err != nil {
				return err
			}
			return boom
		}),
		newReq(bg, func(tx *sql.Tx) error {
			if err := putCursor("c")(tx); err != nil {
				return err
			}
			panic("write c")
		}),
		newReq(done, func(tx *sql.Tx) error { ranCanceled = true; return putCursor("d")(tx) }),
		newReq(bg, putCursor("e")),
	}
	if rest := s.group.commit(batch); len(rest) != 0 {
		t.Fatalf("%d writes not run", len(rest))
	}
	res := make([]writeResult, len(batch))
	for i, r := range batch {
		res[i] = <-r.res
	}
	if res[0].err != nil || res[4].err != nil {
		t.Errorf("good writes failed: %v, %v", res[0].err, res[4].err)
	}
	if !errors.Is(res[1].err, boom) {
		t.Errorf("failing write: %v, want boom", res[1].err)
	}
	if !res[2].panicked || res[2].pan != "write c" {
		t.Errorf("panicking write: %+v", res[2])
	}
	if !errors.Is(res[3].err, context.Canceled) || ranCanceled {
		t.Errorf("write with an ended context: %v (ran: %v)", res[3].err, ranCanceled)
	}
	want := map[string]bool{"a": true, "b": false, "c": false, "d": false, "e": true}
	if got := cursorsPresent(t, s, "a", "b", "c", "d", "e"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cursors %v, want %v", got, want)
	}
}

// TestGroupCommitLostTransaction: when the shared transaction is rolled
// back under a write (as SQLite does when a statement of it is
// interrupted), the writes that ran before are reported failed, not done,
// and the writes after it run in another transaction.
func TestGroupCommitLostTransaction(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "g.db"))
	bg := context.Background()
	batch := []*writeReq{
		newReq(bg, putCursor("x")),
		newReq(bg, func(tx *sql.Tx) error {
			_, err := tx.Exec("ROLLBACK") // the whole transaction, behind the group's back
			return err
		}),
		newReq(bg, putCursor("z")),
	}
	rest := s.group.commit(batch)
	if len(rest) != 1 || rest[0] != batch[2] {
		t.Fatalf("writes left to run: %d, want the last one", len(rest))
	}
	for i, r := range batch[:2] {
		if res := <-r.res; res.err == nil {
			t.Errorf("write %d reported done although its transaction was rolled back", i)
		}
	}
	if rest := s.group.commit(rest); len(rest) != 0 {
		t.Fatal("the retried write was not run")
	}
	if res := <-batch[2].res; res.err != nil {
		t.Errorf("retried write: %v", res.err)
	}
	want := map[string]bool{"x": false, "z": true}
	if got := cursorsPresent(t, s, "x", "z"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("cursors %v, want %v", got, want)
	}
}

// TestGroupCommitConcurrent: many concurrent writers are all committed,
// a panic reaches its own caller only, and writes after Close fail.
func TestGroupCommitConcurrent(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "g.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			if i == 7 {
				defer func() {
					if p := recover(); p != "seven" {
						errs <- fmt.Errorf("writer 7 recovered %v, want its own panic", p)
					}
				}()
				_ = s.inTx(ctx, func(*sql.Tx) error { panic("seven") })
				return
			}
			errs <- s.SetCursor(ctx, fmt.Sprintf("c%d", i), "v")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range 200 {
		_, ok, err := s.GetCursor(ctx, fmt.Sprintf("c%d", i))
		if err != nil || ok != (i != 7) {
			t.Errorf("cursor c%d: present %v, %v", i, ok, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor(ctx, "late", "v"); err == nil {
		t.Error("a write after Close succeeded")
	}
}
