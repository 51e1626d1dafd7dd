package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
)

func names(t *testing.T, rows *sql.Rows, n int) []string {
	t.Helper()
	var out []string
	for (n < 0 || len(out) < n) && rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestStatementCache: an SQLite connection runs its statements again with
// new arguments; the same statement run while its rows are still open
// gets a statement of its own; the connection keeps a bounded number.
func TestStatementCache(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "c.db"))
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		if err := s.SetCursor(ctx, n, "v-"+n); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const q = `SELECT name FROM cursors WHERE name >= $1 ORDER BY name`
	for _, from := range []string{"a", "b", "c"} { // the same statement, new arguments
		rows, err := conn.QueryContext(ctx, q, from)
		if err != nil {
			t.Fatal(err)
		}
		got := names(t, rows, -1)
		rows.Close()
		if want := []string{"a", "b", "c"}[from[0]-'a':]; !slices.Equal(got, want) {
			t.Errorf("from %s: %v, want %v", from, got, want)
		}
	}
	outer, err := conn.QueryContext(ctx, q, "a")
	if err != nil {
		t.Fatal(err)
	}
	first := names(t, outer, 1)
	inner, err := conn.QueryContext(ctx, q, "b") // while outer's rows are open
	if err != nil {
		t.Fatal(err)
	}
	innerGot := names(t, inner, -1)
	inner.Close()
	rest := names(t, outer, -1)
	outer.Close()
	if got := append(first, rest...); !slices.Equal(got, []string{"a", "b", "c"}) || !slices.Equal(innerGot, []string{"b", "c"}) {
		t.Errorf("nested runs of one statement: outer %v, inner %v", got, innerGot)
	}
	kept := func(check func(c *cachingConn) error) {
		t.Helper()
		err := conn.Raw(func(dc any) error {
			c, ok := dc.(*cachingConn)
			if !ok {
				return fmt.Errorf("connection is a %T, not a *cachingConn", dc)
			}
			return check(c)
		})
		if err != nil {
			t.Error(err)
		}
	}
	kept(func(c *cachingConn) error {
		if _, ok := c.stmts[q]; !ok {
			return fmt.Errorf("the repeated statement is not kept")
		}
		return nil
	})
	for i := range maxCachedStmts + 20 {
		var n int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT %d", i)).Scan(&n); err != nil || n != i {
			t.Fatalf("SELECT %d: %d, %v", i, n, err)
		}
	}
	kept(func(c *cachingConn) error {
		if len(c.stmts) > maxCachedStmts {
			return fmt.Errorf("%d statements kept, more than %d", len(c.stmts), maxCachedStmts)
		}
		return nil
	})
}
