package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// colKind is how a column is read and written, the same in both dialects.
type colKind int

const (
	colText     colKind = iota // TEXT NOT NULL
	colNullText                // TEXT
	colInt                     // INTEGER/BIGINT NOT NULL
	colNullInt                 // INTEGER/BIGINT
	colBool                    // BOOLEAN NOT NULL
)

type column struct {
	name string
	kind colKind
}

// copyTable is one table Copy moves, with every column its migrations
// create (a test compares the list with both dialects' schemas).
type copyTable struct {
	name    string
	columns []column
	key     string // ORDER BY of the source read
}

// copyTables are the store's tables, except schema_migrations (the
// target's own migrations fill it). Parents before children, should a
// foreign key ever appear.
var copyTables = []copyTable{
	{"vt_objects", []column{{"kind", colText}, {"id", colText}, {"found", colBool}, {"data", colNullText}, {"fetched_at", colInt}}, "kind, id"},
	{"work_items", []column{{"id", colInt}, {"kind", colText}, {"key", colText}, {"payload", colNullText}, {"result", colNullText},
		{"priority", colInt}, {"state", colText}, {"attempts", colInt}, {"next_attempt_at", colInt}, {"lease_owner", colNullText},
		{"lease_until", colNullInt}, {"last_error", colNullText}, {"created_at", colInt}, {"updated_at", colInt}}, "id"},
	{"queue_state", []column{{"id", colInt}, {"paused", colBool}, {"reason", colText}, {"since", colInt}}, "id"},
	{"cursors", []column{{"name", colText}, {"value", colText}, {"updated_at", colInt}}, "name"},
	{"quota_keys", []column{{"key_id", colText}, {"paused_until", colInt}}, "key_id"},
	{"quota_slots", []column{{"key_id", colText}, {"slot", colInt}, {"busy_until", colInt}, {"ticket", colInt}}, "key_id, slot"},
	{"quota_counters", []column{{"key_id", colText}, {"period", colText}, {"start", colInt}, {"used", colInt}}, "key_id, period"},
	{"results", []column{{"ns", colText}, {"key", colText}, {"value", colText}, {"updated_at", colInt}}, "ns, key"},
	{"result_counts", []column{{"ns", colText}, {"n", colInt}}, "ns"},
}

// CopyOptions tune Copy.
type CopyOptions struct {
	// Overwrite empties the target's tables first. Without it Copy
	// refuses a target that holds any data.
	Overwrite bool
	// ReleaseLeases copies leased items as queued, ready at once, their
	// attempt not counted, as a restarting worker would hand them back.
	// Without it Copy refuses a source with live leases (a running
	// instance): the copy would be a snapshot of work in progress.
	ReleaseLeases bool
	// BatchRows is the number of rows per INSERT (default 500; fewer
	// when the table has many columns).
	BatchRows int
	// Progress, when set, is called after each batch with the table and
	// its rows copied so far, and once more when the table is done.
	Progress func(table string, rows int64, done bool)
}

// TableCount is one table's rows in the source and in the target after
// the copy (equal, or Copy fails).
type TableCount struct {
	Table  string
	Source int64
	Target int64
}

// CopyReport says what Copy did.
type CopyReport struct {
	Tables         []TableCount
	LeasesReleased int64
}

// LiveLeasesError is returned by Copy when the source has items leased by
// a worker whose lease has not expired, and ReleaseLeases is not set.
type LiveLeasesError struct {
	Items int64
	Until time.Time // when the last of them expires
}

func (e *LiveLeasesError) Error() string {
	return fmt.Sprintf("%d work items are leased by a running (or killed) instance, until %s at the latest: stop the instances using the source (a stopping instance hands its items back) or wait until then", e.Items, e.Until.UTC().Format(time.RFC3339))
}

// ErrTargetNotEmpty is returned by Copy when the target holds data and
// Overwrite is not set. Nothing was changed.
var ErrTargetNotEmpty = errors.New("target database is not empty")

// ErrSameDatabase is returned by Copy when source and target are one
// database.
var ErrSameDatabase = errors.New("source and target are the same database")

// Copy copies every table of from into to, which may be of either dialect,
// in one transaction on to: either everything lands or nothing does. It
// reads from a snapshot of from (one read transaction) and streams the rows
// in batches, so that memory stays constant whatever the size. Both stores
// must be at the same schema version (Open brings both to this binary's).
// At the end each table's rows in to are counted and must equal the
// source's, or nothing is committed.
//
// Work items keep their ids; PostgreSQL's id sequence is moved past them.
func Copy(ctx context.Context, from, to *Store, o CopyOptions) (CopyReport, error) {
	rep, err := copyStore(ctx, from, to, o)
	if err != nil {
		return CopyReport{}, fmt.Errorf("store: copy %s to %s: %w", from.dsn, to.dsn, err)
	}
	return rep, nil
}

func copyStore(ctx context.Context, from, to *Store, o CopyOptions) (CopyReport, error) {
	if o.BatchRows <= 0 {
		o.BatchRows = 500
	}
	same, err := sameDatabase(ctx, from, to)
	if err != nil {
		return CopyReport{}, err
	}
	if same {
		return CopyReport{}, ErrSameDatabase
	}
	vf, err := from.SchemaVersion(ctx)
	if err != nil {
		return CopyReport{}, err
	}
	vt, err := to.SchemaVersion(ctx)
	if err != nil {
		return CopyReport{}, err
	}
	if vf != vt {
		return CopyReport{}, fmt.Errorf("source schema version %d, target %d: both must be the same", vf, vt)
	}

	// A snapshot of the source: every table as of one moment.
	opts := &sql.TxOptions{ReadOnly: true}
	if from.dialect == DialectPostgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	src, err := from.db.BeginTx(ctx, opts)
	if err != nil {
		return CopyReport{}, fmt.Errorf("read source: %w", err)
	}
	defer src.Rollback() //nolint:errcheck // read-only

	var live int64
	var until sql.NullInt64
	if err := src.QueryRowContext(ctx, liveLeasesSQL, dbTime(from.now())).Scan(&live, &until); err != nil {
		return CopyReport{}, fmt.Errorf("read source leases: %w", err)
	}
	if live > 0 && !o.ReleaseLeases {
		return CopyReport{}, &LiveLeasesError{Items: live, Until: goTime(until.Int64)}
	}

	var rep CopyReport
	err = to.inTx(ctx, func(dst *sql.Tx) error {
		rep = CopyReport{}
		if o.Overwrite {
			for i := len(copyTables) - 1; i >= 0; i-- {
				if _, err := dst.ExecContext(ctx, "DELETE FROM "+copyTables[i].name); err != nil {
					return fmt.Errorf("empty target table %s: %w", copyTables[i].name, err)
				}
			}
		} else if t, err := nonEmptyTable(ctx, dst); err != nil {
			return err
		} else if t != "" {
			return fmt.Errorf("%w (table %s has rows); copy into a new database or schema, or overwrite it", ErrTargetNotEmpty, t)
		}
		// The migrations' default queue state is replaced by the source's.
		if _, err := dst.ExecContext(ctx, "DELETE FROM queue_state"); err != nil {
			return fmt.Errorf("empty target table queue_state: %w", err)
		}
		for _, t := range copyTables {
			c, err := copyOne(ctx, src, dst, to.dialect, t, o)
			if err != nil {
				return err
			}
			rep.Tables = append(rep.Tables, c)
		}
		if o.ReleaseLeases {
			res, err := dst.ExecContext(ctx, copyReleaseSQL, dbTime(to.now()))
			if err != nil {
				return fmt.Errorf("release leases: %w", err)
			}
			if rep.LeasesReleased, err = res.RowsAffected(); err != nil {
				return fmt.Errorf("release leases: %w", err)
			}
		}
		if to.dialect == DialectPostgres {
			if _, err := dst.ExecContext(ctx, resetIDSequenceSQL); err != nil {
				return fmt.Errorf("move work item id sequence: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return CopyReport{}, err
	}
	return rep, nil
}

const liveLeasesSQL = `SELECT COUNT(*), MAX(lease_until) FROM work_items WHERE state = 'leased' AND lease_until > $1`

const copyReleaseSQL = `UPDATE work_items SET state = 'queued', next_attempt_at = $1, lease_owner = NULL, lease_until = NULL, updated_at = $1
WHERE state = 'leased'`

// resetIDSequenceSQL makes the next work item id follow the copied ones.
const resetIDSequenceSQL = `SELECT setval(pg_get_serial_sequence('work_items', 'id'),
	(SELECT COALESCE(MAX(id), 1) FROM work_items), (SELECT COUNT(*) > 0 FROM work_items))`

// nonEmptyTable returns the first table of the target with rows ("" when
// none); queue_state counts when the queue is paused.
func nonEmptyTable(ctx context.Context, tx *sql.Tx) (string, error) {
	for _, t := range copyTables {
		q := "SELECT 1 FROM " + t.name + " LIMIT 1"
		if t.name == "queue_state" {
			q = "SELECT 1 FROM queue_state WHERE paused LIMIT 1"
		}
		var one int
		err := tx.QueryRowContext(ctx, q).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return "", fmt.Errorf("read target table %s: %w", t.name, err)
		default:
			return t.name, nil
		}
	}
	return "", nil
}

// copyOne streams table t from src into dst in batches and checks the
// counts.
func copyOne(ctx context.Context, src, dst *sql.Tx, dialect string, t copyTable, o CopyOptions) (TableCount, error) {
	c := TableCount{Table: t.name}
	if err := src.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.name).Scan(&c.Source); err != nil {
		return c, fmt.Errorf("count source table %s: %w", t.name, err)
	}
	names := make([]string, len(t.columns))
	for i, col := range t.columns {
		names[i] = col.name
	}
	cols := strings.Join(names, ", ")
	rows, err := src.QueryContext(ctx, "SELECT "+cols+" FROM "+t.name+" ORDER BY "+t.key)
	if err != nil {
		return c, fmt.Errorf("read source table %s: %w", t.name, err)
	}
	defer rows.Close()

	// At most ~30,000 parameters per statement: SQLite's limit is 32,766.
	per := max(1, min(o.BatchRows, 30000/len(t.columns)))
	insert := func(n int) string {
		var b strings.Builder
		b.WriteString("INSERT INTO " + t.name + " (" + cols + ")")
		if dialect == DialectPostgres && t.name == "work_items" {
			b.WriteString(" OVERRIDING SYSTEM VALUE") // keep the ids
		}
		b.WriteString(" VALUES ")
		p := 0
		for r := range n {
			if r > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for k := range t.columns {
				if k > 0 {
					b.WriteString(", ")
				}
				p++
				b.WriteString("$" + strconv.Itoa(p))
			}
			b.WriteByte(')')
		}
		return b.String()
	}
	full, err := dst.PrepareContext(ctx, insert(per))
	if err != nil {
		return c, fmt.Errorf("prepare insert into %s: %w", t.name, err)
	}
	defer full.Close()

	args := make([]any, 0, per*len(t.columns))
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		n := len(args) / len(t.columns)
		var err error
		if n == per {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = dst.ExecContext(ctx, insert(n), args...)
		}
		if err != nil {
			return fmt.Errorf("write target table %s: %w", t.name, err)
		}
		c.Target += int64(n)
		args = args[:0]
		if o.Progress != nil {
			o.Progress(t.name, c.Target, false)
		}
		return nil
	}
	for rows.Next() {
		vals := make([]any, len(t.columns))
		for k, col := range t.columns {
			vals[k] = col.kind.holder()
		}
		if err := rows.Scan(vals...); err != nil {
			return c, fmt.Errorf("read source table %s: %w", t.name, err)
		}
		for _, v := range vals {
			args = append(args, deref(v))
		}
		if len(args) == per*len(t.columns) {
			if err := flush(); err != nil {
				return c, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("read source table %s: %w", t.name, err)
	}
	if err := flush(); err != nil {
		return c, err
	}
	var inTarget int64
	if err := dst.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.name).Scan(&inTarget); err != nil {
		return c, fmt.Errorf("count target table %s: %w", t.name, err)
	}
	if c.Target != c.Source || inTarget != c.Source {
		return c, fmt.Errorf("table %s: %d rows in the source, %d copied, %d in the target", t.name, c.Source, c.Target, inTarget)
	}
	if o.Progress != nil {
		o.Progress(t.name, c.Target, true)
	}
	return c, nil
}

func (k colKind) holder() any {
	switch k {
	case colText:
		return new(string)
	case colNullText:
		return new(sql.NullString)
	case colInt:
		return new(int64)
	case colNullInt:
		return new(sql.NullInt64)
	default:
		return new(bool)
	}
}

func deref(v any) any {
	switch p := v.(type) {
	case *string:
		return *p
	case *sql.NullString:
		return *p
	case *int64:
		return *p
	case *sql.NullInt64:
		return *p
	case *bool:
		return *p
	}
	panic(fmt.Sprintf("store: copy: unexpected holder %T", v))
}

// sameDatabase reports whether a and b are one database: the same SQLite
// file, or the same PostgreSQL server, database and schema.
func sameDatabase(ctx context.Context, a, b *Store) (bool, error) {
	if a.dialect != b.dialect {
		return false, nil
	}
	if a.dialect == DialectSQLite {
		fa, err := sqliteFile(ctx, a)
		if err != nil {
			return false, err
		}
		fb, err := sqliteFile(ctx, b)
		if err != nil {
			return false, err
		}
		if fa == "" || fb == "" { // in memory
			return false, nil
		}
		ia, errA := os.Stat(fa)
		ib, errB := os.Stat(fb)
		if errA != nil || errB != nil {
			return fa == fb, nil
		}
		return os.SameFile(ia, ib), nil
	}
	const q = `SELECT current_database() || '/' || COALESCE(current_schema(), '') || '@' ||
	COALESCE(host(inet_server_addr()), 'local') || ':' || COALESCE(inet_server_port(), 0) || '/' || pg_postmaster_start_time()`
	var ia, ib string
	if err := a.db.QueryRowContext(ctx, q).Scan(&ia); err != nil {
		return false, fmt.Errorf("identify source database: %w", err)
	}
	if err := b.db.QueryRowContext(ctx, q).Scan(&ib); err != nil {
		return false, fmt.Errorf("identify target database: %w", err)
	}
	return ia == ib, nil
}

// sqliteFile is the file of the main database ("" in memory).
func sqliteFile(ctx context.Context, s *Store) (string, error) {
	rows, err := s.db.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return "", fmt.Errorf("identify SQLite database: %w", err)
	}
	defer rows.Close()
	file := ""
	for rows.Next() {
		var (
			seq        int
			name, path string
		)
		if err := rows.Scan(&seq, &name, &path); err != nil {
			return "", fmt.Errorf("identify SQLite database: %w", err)
		}
		if name == "main" {
			file = path
		}
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("identify SQLite database: %w", err)
	}
	return file, nil
}
