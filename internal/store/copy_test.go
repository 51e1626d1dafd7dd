package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// Every table and column the migrations create must be copied: a new
// migration that adds one fails here until copyTables knows it.
func TestCopyTablesMatchSchema(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		s := openStore(t, dsn)
		want := map[string][]string{"schema_migrations": {"applied_at", "name", "version"}}
		nullable := map[string]bool{}
		for _, tb := range copyTables {
			for _, c := range tb.columns {
				want[tb.name] = append(want[tb.name], c.name)
				nullable[tb.name+"."+c.name] = c.kind == colNullText || c.kind == colNullInt
			}
			slices.Sort(want[tb.name])
		}
		got := map[string][]string{}
		var q string
		if s.Dialect() == DialectPostgres {
			q = `SELECT table_name, column_name, is_nullable = 'YES' FROM information_schema.columns WHERE table_schema = current_schema()`
		} else {
			q = `SELECT m.name, p.name, p."notnull" = 0 AND p.pk = 0 FROM sqlite_master m, pragma_table_info(m.name) p
				WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`
		}
		rows, err := s.db.QueryContext(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var tb, col string
			var null bool
			if err := rows.Scan(&tb, &col, &null); err != nil {
				t.Fatal(err)
			}
			got[tb] = append(got[tb], col)
			if tb != "schema_migrations" && null != nullable[tb+"."+col] {
				t.Errorf("%s.%s: nullable %v in the schema, %v in copyTables", tb, col, null, nullable[tb+"."+col])
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for tb := range got {
			slices.Sort(got[tb])
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tables and columns (-copyTables +schema):\n%s", diff)
		}
	})
}

// fillStore writes something into every table through the store's own API:
// cache entries (found and not), items in every state, a paused queue,
// cursors, results and a quota ledger in use.
func fillStore(t *testing.T, s *Store, items int) {
	t.Helper()
	ctx := t.Context()
	base := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	for i := range items {
		e := engine.Entry{Kind: vt.KindFile, ID: fmt.Sprintf("%064x", i), Found: i%3 != 0, FetchedAt: base.Add(time.Duration(i) * time.Second)}
		if e.Found {
			e.Data = json.RawMessage(fmt.Sprintf(`{"id":"%064x","type":"file","attributes":{"n":%d,"s":"é ✓ 'q' \"d\""}}`, i, i))
		}
		if err := s.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var batch []NewItem
	for i := range items {
		it := NewItem{Kind: "cb.binary", Key: fmt.Sprintf("%032x", i), Priority: i % 3}
		if i%2 == 0 {
			it.Payload = json.RawMessage(fmt.Sprintf(`{"md5":"%032x"}`, i))
		}
		if i%5 == 4 {
			it.DoneAt = base
		}
		batch = append(batch, it)
	}
	if _, err := s.EnqueueMany(ctx, batch); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.Claim(ctx, "worker-a", []string{"cb.binary"}, 8, time.Hour)
	if err != nil || len(claimed) < 8 {
		t.Fatalf("claim: %d items, %v", len(claimed), err)
	}
	outcomes := []Outcome{Done(json.RawMessage(`{"score":3}`)), NotFound(), PendingAnalysis(base.Add(time.Hour), json.RawMessage(`{"analysis":"a1"}`)),
		RateLimited(base.Add(time.Minute)), Transient(errors.New("timeout")), Permanent(errors.New("bad request"))}
	var cs []Completion
	for i, o := range outcomes {
		cs = append(cs, Completion{ID: claimed[i].ID, Owner: "worker-a", Outcome: o})
	}
	if _, err := s.CompleteMany(ctx, cs); err != nil {
		t.Fatal(err)
	}
	// claimed[6:] stay leased.
	for i := range 3 {
		if err := s.SetCursor(ctx, fmt.Sprintf("cursor-%d", i), fmt.Sprintf("v%d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutResult(ctx, "cb", fmt.Sprintf("%032x", i), []byte(fmt.Sprintf(`{"score":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	l := s.Ledger("fp-1")
	for range 3 {
		g, err := l.Take(ctx, base, engine.Limits{PerMinute: 4, PerDay: 500, PerMonth: 15500}, time.Minute)
		if err != nil || !g.OK {
			t.Fatalf("take: %+v %v", g, err)
		}
	}
	if err := l.Pause(ctx, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx, "maintenance"); err != nil {
		t.Fatal(err)
	}
}

// dumpStore reads every table in a fixed order, as text.
func dumpStore(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, tb := range copyTables {
		var names []string
		for _, c := range tb.columns {
			names = append(names, c.name)
		}
		rows, err := s.db.QueryContext(t.Context(), "SELECT "+strings.Join(names, ", ")+" FROM "+tb.name+" ORDER BY "+tb.key)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals := make([]any, len(tb.columns))
			for k, c := range tb.columns {
				vals[k] = c.kind.holder()
			}
			if err := rows.Scan(vals...); err != nil {
				t.Fatal(err)
			}
			var cells []string
			for _, v := range vals {
				cells = append(cells, fmt.Sprintf("%v", deref(v)))
			}
			out[tb.name] = append(out[tb.name], strings.Join(cells, " | "))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		// The two dialects order text differently (collations).
		slices.Sort(out[tb.name])
	}
	return out
}

func copyStores(t *testing.T, from, to *Store, o CopyOptions) CopyReport {
	t.Helper()
	rep, err := Copy(t.Context(), from, to, o)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	return rep
}

// A round trip SQLite → PostgreSQL → SQLite (or SQLite → SQLite → SQLite
// without PostgreSQL) gives back every row as it was, in batches that
// do not divide the tables evenly.
func TestCopyRoundTrip(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, middleDSN string) {
		ctx := t.Context()
		dir := t.TempDir()
		src := openStore(t, filepath.Join(dir, "src.db"))
		fillStore(t, src, 57)
		want := dumpStore(t, src)
		if len(want["work_items"]) != 57 || len(want["vt_objects"]) != 57 || len(want["quota_slots"]) == 0 {
			t.Fatalf("source not filled: %d items, %d objects, %d slots", len(want["work_items"]), len(want["vt_objects"]), len(want["quota_slots"]))
		}
		var batches int
		o := CopyOptions{BatchRows: 7, ReleaseLeases: false, Progress: func(string, int64, bool) { batches++ }}
		// The leases of worker-a are an hour long: refused as live.
		mid := openStore(t, middleDSN)
		_, err := Copy(ctx, src, mid, o)
		var live *LiveLeasesError
		if !errors.As(err, &live) || live.Items != 2 {
			t.Fatalf("copy with live leases: %v; want a LiveLeasesError for 2 items", err)
		}
		if got := dumpStore(t, mid); len(got["work_items"]) != 0 {
			t.Fatalf("a refused copy wrote %d work items", len(got["work_items"]))
		}
		// Once the leases expire, the copy goes through and keeps them as
		// they were.
		later := func() time.Time { return time.Now().Add(2 * time.Hour) }
		src.now, mid.now = later, later
		rep := copyStores(t, src, mid, o)
		for _, c := range rep.Tables {
			if c.Source != c.Target || c.Source != int64(len(want[c.Table])) {
				t.Errorf("report %+v: want %d rows copied", c, len(want[c.Table]))
			}
		}
		if batches < 57/7*2 {
			t.Errorf("%d progress calls; want one per batch of 7 rows", batches)
		}
		if diff := cmp.Diff(want, dumpStore(t, mid)); diff != "" {
			t.Fatalf("%s after the copy (-source +copy):\n%s", mid.Dialect(), diff)
		}
		back := openStore(t, filepath.Join(dir, "back.db"))
		copyStores(t, mid, back, o)
		if diff := cmp.Diff(want, dumpStore(t, back)); diff != "" {
			t.Fatalf("after the round trip (-source +copy):\n%s", diff)
		}
		// The copies work: new items get new ids, the pause came along.
		for _, s := range []*Store{mid, back} {
			if _, err := s.Enqueue(ctx, NewItem{Kind: "cb.binary", Key: "new"}); err != nil {
				t.Fatalf("%s: enqueue after the copy: %v", s.Dialect(), err)
			}
			it, _, err := s.GetItem(ctx, "cb.binary", "new")
			if err != nil || it.ID <= 57 {
				t.Errorf("%s: new item id %d (%v); want above the copied ones", s.Dialect(), it.ID, err)
			}
			if p, err := s.Paused(ctx); err != nil || !p.Paused || p.Reason != "maintenance" {
				t.Errorf("%s: pause %+v %v; want the source's", s.Dialect(), p, err)
			}
		}
	})
}

func TestCopyRefusesANonEmptyTargetUnlessOverwrite(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		src := openStore(t, filepath.Join(t.TempDir(), "src.db"))
		fillStore(t, src, 10)
		o := CopyOptions{ReleaseLeases: true}
		dst := openStore(t, dsn)
		if err := dst.SetCursor(ctx, "precious", "1"); err != nil {
			t.Fatal(err)
		}
		_, err := Copy(ctx, src, dst, o)
		if !errors.Is(err, ErrTargetNotEmpty) || !strings.Contains(err.Error(), "cursors") {
			t.Fatalf("copy into a non-empty target: %v; want ErrTargetNotEmpty naming cursors", err)
		}
		if v, ok, _ := dst.GetCursor(ctx, "precious"); !ok || v != "1" {
			t.Fatalf("a refused copy changed the target")
		}
		o.Overwrite = true
		rep := copyStores(t, src, dst, o)
		if rep.LeasesReleased != 2 {
			t.Errorf("%d leases released, want 2", rep.LeasesReleased)
		}
		if _, ok, _ := dst.GetCursor(ctx, "precious"); ok {
			t.Errorf("overwrite kept the target's cursor")
		}
		st, err := dst.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Count("", StateLeased) != 0 || st.Count("", "") != 10 {
			t.Errorf("after a copy releasing leases: %+v; want 10 items, none leased", st.Counts)
		}
		// The source keeps its leases: the copy only reads it.
		if st, _ := src.Stats(ctx); st.Count("", StateLeased) != 2 {
			t.Errorf("the source has %d leased items, want 2", st.Count("", StateLeased))
		}
		// A paused queue alone makes a target non-empty too.
		empty := openStore(t, filepath.Join(t.TempDir(), "paused.db"))
		if err := empty.Pause(ctx, "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := Copy(ctx, src, empty, CopyOptions{ReleaseLeases: true}); !errors.Is(err, ErrTargetNotEmpty) {
			t.Errorf("copy into a paused empty store: %v; want ErrTargetNotEmpty", err)
		}
	})
}

func TestCopyRefusesTheSameDatabase(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		a := openStore(t, dsn)
		b := openStore(t, dsn)
		if _, err := Copy(t.Context(), a, b, CopyOptions{Overwrite: true}); !errors.Is(err, ErrSameDatabase) {
			t.Errorf("copy onto itself: %v; want ErrSameDatabase", err)
		}
	})
}

// A failure half-way leaves the target as it was: one transaction.
func TestCopyFailureChangesNothing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		src := openStore(t, filepath.Join(t.TempDir(), "src.db"))
		fillStore(t, src, 10)
		dst := openStore(t, dsn)
		cctx, cancel := context.WithCancel(ctx)
		o := CopyOptions{ReleaseLeases: true, BatchRows: 3, Progress: func(table string, _ int64, _ bool) {
			if table == "work_items" {
				cancel()
			}
		}}
		if _, err := Copy(cctx, src, dst, o); err == nil {
			t.Fatal("a copy cancelled half-way succeeded")
		}
		got := dumpStore(t, dst)
		for _, tb := range copyTables {
			if n := len(got[tb.name]); n != 0 && tb.name != "queue_state" {
				t.Errorf("table %s has %d rows after a failed copy", tb.name, n)
			}
		}
		var paused bool
		if err := dst.db.QueryRowContext(ctx, "SELECT paused FROM queue_state").Scan(&paused); err != nil || paused {
			t.Errorf("queue_state after a failed copy: paused %v, %v; want the default row", paused, err)
		}
	})
}
