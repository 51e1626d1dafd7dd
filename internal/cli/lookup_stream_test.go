package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/vtconnector/vtconnector/internal/engine"
)

// holdFirst answers every lookup at once except the one of first, which
// waits for release.
type holdFirst struct {
	first   string
	release chan struct{}
}

func (h *holdFirst) Lookup(ctx context.Context, r engine.Request) (engine.Result, error) {
	if r.ID == h.first {
		select {
		case <-h.release:
		case <-ctx.Done():
			return engine.Result{}, ctx.Err()
		}
	}
	return engine.Result{Kind: r.Kind, ID: r.ID}, nil
}

// TestLookupStreamsInBoundedMemory: while the first query is unanswered,
// lookup reads only a bounded number of queries from standard input
// (however many are offered) and prints nothing out of order; once it is
// answered every result comes out, in input order.
func TestLookupStreamsInBoundedMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, concurrency = 20_000, 4
		hash := func(i int) string { return fmt.Sprintf("%064x", i+1) }
		pr, pw := io.Pipe()
		var written atomic.Int64
		go func() {
			for i := range n {
				if _, err := io.WriteString(pw, hash(i)+"\n"); err != nil {
					return
				}
				written.Add(1)
			}
			pw.Close()
		}()
		eng := &holdFirst{first: hash(0), release: make(chan struct{})}
		lk := &lookuper{eng: eng, f: &lookupFlags{concurrency: concurrency}}
		src := newQueries(pr, nil, nil)
		defer src.close()
		var emitted []string
		done := make(chan *tally)
		go func() {
			done <- lk.runAll(t.Context(), src.next, func(*lookupResult) {}, func(r *lookupResult) { emitted = append(emitted, r.Query) }, func() {})
		}()
		synctest.Wait()
		// The window, the workers, the line buffer and the scanner's line
		// in hand; far below n.
		if w, bound := written.Load(), int64(reorderWindow*concurrency+concurrency+256+8); w > bound {
			t.Errorf("%d of %d queries read while the first was unanswered; want at most %d", w, n, bound)
		}
		t.Logf("%d of %d queries read while the first was unanswered", written.Load(), n)
		if len(emitted) != 0 {
			t.Errorf("%d results printed before the first", len(emitted))
		}
		close(eng.release)
		tl := <-done
		if len(emitted) != n || tl.total != n || tl.failed != 0 {
			t.Fatalf("%d results printed, tally %+v; want %d", len(emitted), tl, n)
		}
		for i, q := range emitted {
			if q != hash(i) {
				t.Fatalf("result %d is for %s, want %s (input order)", i, q, hash(i))
			}
		}
	})
}

// TestLookupListsABoundedNumberOfFailures: the summary of a run where
// every query failed lists the first failures and counts the rest.
func TestLookupListsABoundedNumberOfFailures(t *testing.T) {
	var stdin strings.Builder
	for i := range maxListedFailures + 50 {
		fmt.Fprintf(&stdin, "not-a-query-%d!\n", i)
	}
	r := runCLI(t, nil, stdin.String(), nil, "lookup", "--apikey", "k", "--vt-url", simBase, "--rate", "0", "--format", "csv")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	if got := strings.Count(r.stdout, "\n"); got != maxListedFailures+51 {
		t.Errorf("%d output lines, want a header and %d results", got, maxListedFailures+50)
	}
	for _, want := range []string{fmt.Sprintf("%d of %d queries not answered", maxListedFailures+50, maxListedFailures+50), "not-a-query-0!", "… and 50 more"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, lastLines(r.stderr, 5))
		}
	}
	if strings.Contains(r.stderr, fmt.Sprintf("not-a-query-%d!", maxListedFailures)) {
		t.Errorf("stderr lists more than %d failures", maxListedFailures)
	}
}
