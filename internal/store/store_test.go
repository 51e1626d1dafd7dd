package store

import (
	"github.com/vtconnector/vtconnector/internal/store/storetest"

	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/vtconnector/vtconnector/internal/redact"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// forEachBackend runs fn as a subtest against a fresh SQLite file and, when
// VTC_TEST_POSTGRES_DSN is set, against a fresh PostgreSQL schema.
func forEachBackend(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, filepath.Join(t.TempDir(), "vtc.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, postgresDSN(t))
	})
}

// postgresDSN is a schema of the test's own, dropped at the end.
func postgresDSN(t testing.TB) string {
	t.Helper()
	return storetest.PostgresDSN(t, "vtc_test", "")
}

// openStore opens dsn for the test and closes it at the end.
func openStore(t testing.TB, dsn string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func knownVersion(t testing.TB, dialect string) int {
	t.Helper()
	ms, err := migrations(dialect)
	if err != nil {
		t.Fatal(err)
	}
	return len(ms)
}

func countRows(t testing.TB, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestOpenMigratesEmptyDatabase(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn)
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := knownVersion(t, s.Dialect()); v != want || want == 0 {
			t.Errorf("schema version %d, want %d", v, want)
		}
		for _, table := range []string{"vt_objects", "work_items", "queue_state", "cursors", "quota_keys", "quota_slots", "quota_counters"} {
			countRows(t, s, "SELECT COUNT(*) FROM "+table)
		}
		if p, err := s.Paused(ctx); err != nil || p.Paused {
			t.Errorf("fresh queue: Paused = %+v, %v; want not paused", p, err)
		}
		if s.Dialect() == DialectSQLite {
			for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "10000", "page_size": "8192"} {
				var got string
				if err := s.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
					t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
				}
			}
		}
	})
}

func TestOpenAgainKeepsDataAndAppliesNothing(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetCursor(ctx, "cb.binary", "2026-03-14T12:00:00Z"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = openStore(t, dsn)
		s.Close()
		s = openStore(t, dsn)
		if v, ok, err := s.GetCursor(ctx, "cb.binary"); err != nil || !ok || v != "2026-03-14T12:00:00Z" {
			t.Errorf("cursor after reopening = %q, %v, %v", v, ok, err)
		}
		if n, want := countRows(t, s, "SELECT COUNT(*) FROM schema_migrations"), knownVersion(t, s.Dialect()); n != want {
			t.Errorf("schema_migrations has %d rows, want %d", n, want)
		}
	})
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		s := openStore(t, dsn)
		known := knownVersion(t, s.Dialect())
		if _, err := s.db.ExecContext(t.Context(), recordMigrationSQL, known+1, "from_the_future", 0); err != nil {
			t.Fatal(err)
		}
		s.Close()
		_, err := Open(t.Context(), dsn)
		var tooNew *SchemaTooNewError
		if !errors.As(err, &tooNew) {
			t.Fatalf("Open of a newer schema: %v, want *SchemaTooNewError", err)
		}
		want := fmt.Sprintf("store: database schema is version %d but this vtconnector knows only up to %d; upgrade vtconnector", known+1, known)
		if err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	})
}

func TestOpenConcurrentlyMigratesOnce(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		const n = 4
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				<-start
				s, err := Open(context.Background(), dsn)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open #%d: %v", i, err)
			}
		}
		s := openStore(t, dsn)
		if n, want := countRows(t, s, "SELECT COUNT(*) FROM schema_migrations"), knownVersion(t, s.Dialect()); n != want {
			t.Errorf("schema_migrations has %d rows, want %d", n, want)
		}
		if n := countRows(t, s, "SELECT COUNT(*) FROM queue_state"); n != 1 {
			t.Errorf("queue_state has %d rows, want 1", n)
		}
	})
}

func TestMigrationsExistForEveryDialect(t *testing.T) {
	t.Parallel()
	names := map[string][]string{}
	for _, d := range []string{DialectSQLite, DialectPostgres} {
		ms, err := migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			names[d] = append(names[d], fmt.Sprintf("%04d_%s", m.version, m.name))
		}
	}
	if diff := cmp.Diff(names[DialectSQLite], names[DialectPostgres]); diff != "" {
		t.Errorf("migrations differ between dialects (-sqlite +postgres):\n%s", diff)
	}
}

func TestParseDSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dsn, dialect, base, dir string
		memory                  bool
	}{
		{dsn: "/var/lib/vtc/vtc.db", dialect: "sqlite", base: "/var/lib/vtc/vtc.db", dir: "/var/lib/vtc"},
		{dsn: "vtc.db", dialect: "sqlite", base: "vtc.db", dir: "."},
		{dsn: "sqlite:///var/lib/vtc/vtc.db", dialect: "sqlite", base: "/var/lib/vtc/vtc.db", dir: "/var/lib/vtc"},
		{dsn: "sqlite://data/vtc.db?_synchronous=NORMAL", dialect: "sqlite", base: "data/vtc.db", dir: "data"},
		{dsn: "file:/var/lib/vtc/vtc.db?mode=rwc", dialect: "sqlite", base: "file:/var/lib/vtc/vtc.db", dir: "/var/lib/vtc"},
		{dsn: "file:///var/lib/my%20vtc/vtc.db", dialect: "sqlite", base: "file:///var/lib/my%20vtc/vtc.db", dir: "/var/lib/my vtc"},
		{dsn: ":memory:", dialect: "sqlite", base: ":memory:", memory: true},
		{dsn: "postgres://vtc@db/vtc", dialect: "postgres", base: "postgres://vtc@db/vtc"},
		{dsn: "postgresql://vtc@db/vtc?sslmode=require", dialect: "postgres", base: "postgresql://vtc@db/vtc?sslmode=require"},
	}
	for _, tt := range tests {
		got, err := parseDSN(tt.dsn)
		if err != nil {
			t.Errorf("parseDSN(%q): %v", tt.dsn, err)
			continue
		}
		base, query, _ := strings.Cut(got.dsn, "?")
		if tt.dialect == "postgres" {
			base = got.dsn
		}
		if got.dialect != tt.dialect || base != tt.base || got.dir != tt.dir || got.memory != tt.memory {
			t.Errorf("parseDSN(%q) = dialect %q, base %q, dir %q, memory %v; want %q, %q, %q, %v",
				tt.dsn, got.dialect, base, got.dir, got.memory, tt.dialect, tt.base, tt.dir, tt.memory)
		}
		if tt.dialect == "sqlite" {
			q, _ := url.ParseQuery(query)
			if q.Get("_txlock") != "immediate" || q.Get("_busy_timeout") != "10000" {
				t.Errorf("parseDSN(%q): driver parameters %q lack the defaults", tt.dsn, query)
			}
			// WAL is set once at Open, not on every connection.
			if q.Has("_journal_mode") || (got.journal == "WAL") == tt.memory {
				t.Errorf("parseDSN(%q): journal %q, parameters %q; want WAL once at Open for files", tt.dsn, got.journal, query)
			}
			if strings.Contains(tt.dsn, "_synchronous=NORMAL") != (q.Get("_synchronous") == "NORMAL") {
				t.Errorf("parseDSN(%q): _synchronous = %q; the DSN's own setting must win", tt.dsn, q.Get("_synchronous"))
			}
		}
	}
	for _, bad := range []string{"", "  ", "mysql://root:hunter2@db/vtc", "sqlite://"} {
		if _, err := parseDSN(bad); err == nil {
			t.Errorf("parseDSN(%q) succeeded, want an error", bad)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("parseDSN(%q) error %q shows the password", bad, err)
		}
	}
}

func TestOpenNeverShowsThePassword(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://vtc:hunter2@127.0.0.1:1/vtc?sslmode=disable&connect_timeout=2",
		"postgresql://vtc@127.0.0.1:1/vtc?sslmode=disable&connect_timeout=2&password=hunter2",
		"postgres://vtc:hunter2@[::1/vtc",
		"postgres://vtc:hunter2/x?y#z@127.0.0.1:1/vtc?connect_timeout=2",
		"host=127.0.0.1 port=1 user=vtc password=hunter2 dbname=vtc",
	} {
		_, err := Open(t.Context(), dsn)
		if err == nil {
			t.Fatalf("Open(%s) succeeded", redact.DSN(dsn))
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
	t.Run("logs", func(t *testing.T) {
		u, err := url.Parse(postgresDSN(t))
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(u.User.Username(), "hunter2") // the test server trusts, so any password works
		var logs bytes.Buffer
		openStore(t, u.String(), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		if !strings.Contains(logs.String(), redact.Mark) || strings.Contains(logs.String(), "hunter2") {
			t.Errorf("logs do not show the DSN redacted:\n%s", logs.String())
		}
	})
}

func TestOpenCreatesTheDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a", "b", "vtc.db")
	openStore(t, "sqlite://"+path)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenInMemory(t *testing.T) {
	t.Parallel()
	s := openStore(t, ":memory:")
	if err := s.SetCursor(t.Context(), "c", "v"); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := s.GetCursor(t.Context(), "c"); v != "v" || !ok || err != nil {
		t.Errorf("GetCursor = %q, %v, %v", v, ok, err)
	}
}

func TestCursors(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn)
		if _, ok, err := s.GetCursor(ctx, "cb.binary"); ok || err != nil {
			t.Errorf("GetCursor of an unset cursor = %v, %v; want false, nil", ok, err)
		}
		for _, v := range []string{"100", "200", ""} {
			if err := s.SetCursor(ctx, "cb.binary", v); err != nil {
				t.Fatal(err)
			}
			if got, ok, err := s.GetCursor(ctx, "cb.binary"); got != v || !ok || err != nil {
				t.Errorf("GetCursor = %q, %v, %v; want %q", got, ok, err, v)
			}
		}
		if err := s.SetCursor(ctx, "", "x"); err == nil {
			t.Error("SetCursor with an empty name succeeded")
		}
	})
}

// TestOpenWhileAnotherHoldsTheDatabase: a second Open while a write
// transaction holds the SQLite file waits instead of failing. The holder
// commits only once the second Open is seen waiting in SQLite's busy
// handler, inside its schema migration (its goroutine's stack shows both):
// without that event the test could pass without Open ever meeting the
// lock.
func TestOpenWhileAnotherHoldsTheDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "busy.db")
	a := openStore(t, path)
	tx, err := a.db.BeginTx(t.Context(), nil) // BEGIN IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO cursors (name, value, updated_at) VALUES ('x', 'y', 0)`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		b, err := Open(context.Background(), path)
		if err == nil {
			b.Close()
		}
		done <- err
	}()
	if err := waitForGoroutine(done, "internal/store.(*Store).migrate", "BusyHandler"); err != nil {
		_ = tx.Rollback()
		t.Fatalf("the second Open did not wait on the held lock: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Open while another connection held the database: %v", err)
	}
}

// waitForGoroutine polls the stacks of all goroutines until one holds
// every frame name of frames (SQLite's busy handler is named after
// SQLite's C function, which the pure-Go driver keeps), or returns an
// error when done delivers first (the awaited call returned without
// passing there).
func waitForGoroutine(done <-chan error, frames ...string) error {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
			found := true
			for _, f := range frames {
				found = found && strings.Contains(g, f)
			}
			if found {
				return nil
			}
		}
		select {
		case err := <-done:
			return fmt.Errorf("it returned first (error %v)", err)
		case <-time.After(time.Millisecond):
		}
	}
}
