package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"
)

// migrationFiles holds the schema of each dialect as numbered steps:
// migrations/<dialect>/NNNN_name.sql, applied in order, each exactly once.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// SchemaTooNewError is returned by Open when the database was migrated by a
// newer vtconnector than this one. Nothing was changed.
type SchemaTooNewError struct {
	Version int // the database's schema version
	Known   int // the newest version this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("store: database schema is version %d but this vtconnector knows only up to %d; upgrade vtconnector", e.Version, e.Known)
}

// migrations returns the dialect's steps in order; the versions must run
// 1, 2, 3… without gaps.
func migrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	name := regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)
	var ms []migration
	for _, e := range entries {
		m := name.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s/%s: name must be NNNN_name.sql", dir, e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s/%s: expected version %d", dir, e.Name(), len(ms)+1)
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: m[2], sql: string(b)})
	}
	return ms, nil
}

const createMigrationsTableSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at BIGINT  NOT NULL
)`

// lockMigrationsSQL serialises migrations on PostgreSQL until the
// transaction ends; per schema, so that schemas in one database do not
// wait for each other. On SQLite the transaction's write lock (BEGIN
// IMMEDIATE) does the same.
const lockMigrationsSQL = `SELECT pg_advisory_xact_lock(hashtext('vtconnector.migrate.' || COALESCE(current_schema(), '')))`

const appliedMigrationsSQL = `SELECT version FROM schema_migrations ORDER BY version`

const recordMigrationSQL = `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`

// migrate applies the missing steps in one transaction under the lock, so
// that instances starting together apply each step once, and refuses a
// database newer than this binary.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := migrations(s.dialect)
	if err != nil {
		return fmt.Errorf("read migrations: %w", err)
	}
	known := len(ms)
	var from, to int
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.dialect == DialectPostgres {
			if _, err := tx.ExecContext(ctx, lockMigrationsSQL); err != nil {
				return fmt.Errorf("lock schema: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, createMigrationsTableSQL); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied, err := appliedVersions(ctx, tx)
		if err != nil {
			return err
		}
		for v := range applied {
			from = max(from, v)
		}
		if from > known {
			return &SchemaTooNewError{Version: from, Known: known}
		}
		to = from
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.ExecContext(ctx, recordMigrationSQL, m.version, m.name, dbTime(s.now())); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
			to = max(to, m.version)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if to != from {
		s.log.Info("database schema migrated", "dialect", s.dialect, "from_version", from, "to_version", to)
	}
	return nil
}

func appliedVersions(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}) (map[int]bool, error) {
	rows, err := q.QueryContext(ctx, appliedMigrationsSQL)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// SchemaVersion is the newest migration applied to the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	applied, err := appliedVersions(ctx, s.db)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	v := 0
	for a := range applied {
		v = max(v, a)
	}
	return v, nil
}
