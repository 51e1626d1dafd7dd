package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // also registers the database/sql driver "pgx"
	_ "modernc.org/sqlite"           // database/sql driver "sqlite"

	"github.com/vtconnector/vtconnector/internal/redact"
	"github.com/vtconnector/vtconnector/internal/retry"
)

// Dialects, as returned by Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Store is vtconnector's durable state in SQLite or PostgreSQL. It is safe
// for concurrent use, and several processes may share one database.
type Store struct {
	db      *sql.DB
	dialect string
	dsn     string // redacted, for messages
	log     *slog.Logger
	now     func() time.Time
	backoff retry.Backoff

	// group runs this process's SQLite writes, which SQLite takes one at
	// a time anyway: they queue there instead of spinning in SQLite's busy
	// handler, and the writes that queued while a commit was in flight
	// share the next one (see groupWriter). Other processes are held off
	// by busy_timeout. nil on PostgreSQL, and while Open migrates.
	group *groupWriter
}

type options struct {
	log      *slog.Logger
	now      func() time.Time
	backoff  retry.Backoff
	maxConns int
}

// Option tunes Open.
type Option func(*options)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock replaces time.Now for the queue and cache bookkeeping (tests).
// The quota ledger uses the times its callers pass.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithBackoff sets the retry delay after a Transient outcome: base after the
// first failure, doubling with each further one, at most max (default 30 s
// and 1 h).
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) { o.backoff = retry.Backoff{First: base, Max: max} }
}

// WithMaxConns bounds the connection pool (default 10 on PostgreSQL, 8 on
// SQLite).
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// ErrLeaseLost is returned by Complete and ExtendLease when the caller no
// longer holds the item's lease: wrong owner, or the lease expired and
// another worker claimed the item. Nothing was changed.
var ErrLeaseLost = errors.New("lease lost")

// Open connects to the database named by dsn and brings its schema up to
// date. dsn is a PostgreSQL URL (postgres:// or postgresql://) or an SQLite
// database: a plain path, sqlite://PATH or a file: URI. SQLite's parent
// directory is created. Query parameters are passed to the driver; on
// SQLite the defaults busy_timeout=10s, journal_mode=WAL, synchronous=FULL,
// foreign_keys=on and (for a new file) page_size=8192 apply unless the DSN
// sets them.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{
		log:     slog.New(slog.DiscardHandler),
		now:     time.Now,
		backoff: retry.Backoff{First: 30 * time.Second, Max: time.Hour},
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.backoff.First <= 0 || o.backoff.Max < o.backoff.First {
		return nil, fmt.Errorf("store: open: backoff base %s and max %s: base must be positive and not above max", o.backoff.First, o.backoff.Max)
	}
	t, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if t.dir != "" {
		if err := os.MkdirAll(t.dir, 0o750); err != nil {
			return nil, fmt.Errorf("store: open %s: create directory: %w", t.redacted, err)
		}
	}
	var db *sql.DB
	if t.dialect == DialectSQLite {
		drv, err := sqliteDriver()
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", t.redacted, err)
		}
		db = sql.OpenDB(stmtCacheConnector{drv: drv, dsn: t.dsn})
	} else if db, err = sql.Open(t.driver, t.dsn); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", t.redacted, err)
	}
	s := &Store{db: db, dialect: t.dialect, dsn: t.redacted, log: o.log, now: o.now, backoff: o.backoff}
	switch {
	case t.memory:
		// Every connection to :memory: is a database of its own.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
	case t.dialect == DialectSQLite:
		n := cmpOr(o.maxConns, 8)
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
	default:
		n := cmpOr(o.maxConns, 10)
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := retryBusy(ctx, func() error { return db.PingContext(ctx) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: connect: %w", t.redacted, err)
	}
	if t.journal != "" {
		// The first process to open a new database switches it to WAL;
		// later ones find it so. Another process holding the database
		// can make the switch fail at once with SQLITE_BUSY: wait.
		err := retryBusy(ctx, func() error {
			_, err := db.ExecContext(ctx, "PRAGMA journal_mode = "+t.journal)
			return err
		})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("store: open %s: set journal mode: %w", t.redacted, err)
		}
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		var tooNew *SchemaTooNewError
		if errors.As(err, &tooNew) {
			return nil, tooNew
		}
		return nil, fmt.Errorf("store: open %s: %w", t.redacted, err)
	}
	if t.dialect == DialectSQLite {
		s.group = newGroupWriter(db)
	}
	s.log.Debug("store opened", "dialect", s.dialect, "dsn", s.dsn)
	return s, nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// Close closes the database. Writes still running finish first; later
// ones fail.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.close()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Dialect is DialectSQLite or DialectPostgres.
func (s *Store) Dialect() string { return s.dialect }

// target is a parsed DSN.
type target struct {
	dialect, driver string
	dsn             string // for the driver
	redacted        string // for messages
	dir             string // SQLite: directory to create
	memory          bool   // SQLite in memory
	// journal is the journal mode to set once at Open (SQLite): it is
	// stored in the database file, and setting it on every new
	// connection can fail with SQLITE_BUSY without waiting while another
	// process holds the database.
	journal string
}

// keywordDSN recognises a libpq keyword/value DSN ("host=db user=…"),
// which would otherwise be taken for an SQLite file name.
var keywordDSN = regexp.MustCompile(`^\s*(host|hostaddr|port|dbname|user|password|sslmode|service)\s*=`)

func parseDSN(dsn string) (target, error) {
	dsn = strings.TrimSpace(dsn)
	lower := strings.ToLower(dsn)
	switch {
	case dsn == "":
		return target{}, errors.New("empty database DSN")
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return target{dialect: DialectPostgres, driver: "pgx", dsn: dsn, redacted: redact.DSN(dsn)}, nil
	}
	var path, query, base string
	switch {
	case strings.HasPrefix(lower, "sqlite://"):
		path, query, _ = strings.Cut(dsn[len("sqlite://"):], "?")
		base = path
	case strings.HasPrefix(lower, "file:"):
		// An SQLite URI: passed on as it is, so its own parameters
		// (mode=, cache=, vfs=) keep working.
		var rest string
		rest, query, _ = strings.Cut(dsn[len("file:"):], "?")
		base = "file:" + rest
		if p, ok := strings.CutPrefix(rest, "//"); ok { // file://host/path
			if i := strings.IndexByte(p, '/'); i >= 0 {
				p = p[i:]
			}
			rest = p
		}
		if p, err := url.PathUnescape(rest); err == nil {
			rest = p
		}
		path = rest
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return target{}, fmt.Errorf("unsupported database URL scheme %q: use a file path, sqlite://PATH, file:PATH or postgres://", scheme)
	case keywordDSN.MatchString(dsn):
		return target{}, errors.New("a PostgreSQL key=value DSN (host=… password=…) is not supported: use postgres://USER:PASSWORD@HOST/DB")
	default:
		path, query, _ = strings.Cut(dsn, "?")
		base = path
	}
	if path == "" {
		return target{}, errors.New("empty SQLite database path")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return target{}, fmt.Errorf("SQLite DSN parameters %q: %w", query, err)
	}
	memory := strings.HasPrefix(path, ":memory:") || q.Get("mode") == "memory"
	// The settings every SQLite connection gets unless the DSN sets them:
	// the modernc shorthand key, its alias, the pragma name and the value.
	// synchronous=FULL makes a committed transaction survive a power cut,
	// not only a process crash.
	defaults := [...]struct{ key, alias, pragma, value string }{
		{"_busy_timeout", "_timeout", "busy_timeout", "10000"},
		{"_synchronous", "_sync", "synchronous", "FULL"},
		{"_foreign_keys", "_fk", "foreign_keys", "1"},
	}
	for _, d := range defaults {
		if q.Has(d.key) || q.Has(d.alias) || hasPragma(q, d.pragma) {
			continue
		}
		q.Set(d.key, d.value)
	}
	// Cached objects are ~2 KB: with 4 KB pages each takes a page of
	// its own, with 8 KB three share one (a third less disk). Only a new
	// database takes the setting.
	if !hasPragma(q, "page_size") {
		q.Add("_pragma", "page_size(8192)")
	}
	journal := ""
	if !q.Has("_journal_mode") && !q.Has("_journal") && !hasPragma(q, "journal_mode") && !memory {
		journal = "WAL"
	}
	// Writers must take SQLite's write lock when their transaction
	// begins; a deferred transaction that upgrades later can fail with
	// SQLITE_BUSY at once instead of waiting.
	q.Set("_txlock", "immediate")
	t := target{dialect: DialectSQLite, driver: "sqlite", dsn: base + "?" + q.Encode(), redacted: dsn, memory: memory, journal: journal}
	if !memory {
		t.dir = filepath.Dir(path)
	}
	return t, nil
}

func hasPragma(q url.Values, name string) bool {
	for _, p := range q["_pragma"] {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(p)), name) {
			return true
		}
	}
	return false
}

// redact hides the password of a PostgreSQL URL, in its user info and in
// a password parameter.

// exec runs one writing statement.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s.group == nil {
		return s.db.ExecContext(ctx, s.sql(query), args...)
	}
	var res sql.Result
	err := s.group.do(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, s.sql(query), args...)
		return err
	})
	return res, err
}

// inTx runs fn in a writing transaction (BEGIN IMMEDIATE on SQLite) and
// commits it when fn returns nil. On SQLite the transaction may be shared
// with other writers of this process (group commit): fn's changes are
// undone alone when it fails, and inTx returns only once they are
// committed.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.group != nil {
		return s.group.do(ctx, fn)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// pipeline runs fn on one PostgreSQL connection of the pool through pgx
// itself, for statements sent together as one batch (one round trip
// instead of one per statement). A transaction fn leaves open, because a
// statement failed or fn decided so, is rolled back before the connection
// goes back to the pool.
func (s *Store) pipeline(ctx context.Context, fn func(pc *pgx.Conn) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("unexpected PostgreSQL driver connection %T", dc)
		}
		pc := sc.Conn()
		err := fn(pc)
		if pc.PgConn().TxStatus() != 'I' {
			// Otherwise the driver would discard the connection and
			// dial a new one.
			if _, rbErr := pc.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
				return errors.Join(err, rbErr, driver.ErrBadConn)
			}
		}
		return err
	})
}

// sql applies the per-dialect parts of a query: {{for_update}} and
// {{skip_locked}} lock rows on PostgreSQL; SQLite needs no row locks, its
// writers run one at a time.
func (s *Store) sql(query string) string {
	if !strings.Contains(query, "{{") {
		return query
	}
	lock, skip := "", ""
	if s.dialect == DialectPostgres {
		lock, skip = "FOR UPDATE", "FOR UPDATE SKIP LOCKED"
	}
	return strings.NewReplacer("{{for_update}}", lock, "{{skip_locked}}", skip).Replace(query)
}

// Times are stored as Unix nanoseconds; 0 is the zero time.
func dbTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func goTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// text turns JSON bytes into a nullable text column value.
func text(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// retryBusy runs fn again while SQLite answers "database is locked"
// (SQLITE_BUSY) without having waited, for up to 15 seconds.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(15 * time.Second)
	wait := 10 * time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		if err := retry.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = retry.Backoff{First: 10 * time.Millisecond, Max: 500 * time.Millisecond}.Next(wait)
	}
}

func isBusy(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked")
}
