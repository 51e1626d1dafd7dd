package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Result is a value a front publishes under a namespace and key, with the
// time it last changed.
type Result struct {
	Key       string
	Value     []byte
	UpdatedAt time.Time
}

const getResultSQL = `SELECT value, updated_at FROM results WHERE ns = $1 AND key = $2`

// GetResult returns the result stored under (ns, key); false when none.
func (s *Store) GetResult(ctx context.Context, ns, key string) (Result, bool, error) {
	var (
		v  string
		at int64
	)
	err := s.db.QueryRowContext(ctx, getResultSQL, ns, key).Scan(&v, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return Result{}, false, nil
	}
	if err != nil {
		return Result{}, false, fmt.Errorf("store: get result %s/%s: %w", ns, key, err)
	}
	return Result{Key: key, Value: []byte(v), UpdatedAt: goTime(at)}, true, nil
}

const (
	lockResultSQL   = `SELECT value FROM results WHERE ns = $1 AND key = $2 {{for_update}}`
	insertResultSQL = `INSERT INTO results (ns, key, value, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (ns, key) DO NOTHING`
	updateResultSQL = `UPDATE results SET value = $3, updated_at = $4 WHERE ns = $1 AND key = $2`
	deleteResultSQL = `DELETE FROM results WHERE ns = $1 AND key = $2`
	countAddSQL     = `INSERT INTO result_counts (ns, n) VALUES ($1, $2) ON CONFLICT (ns) DO UPDATE SET n = result_counts.n + excluded.n`
	countResultsSQL = `SELECT n FROM result_counts WHERE ns = $1`
)

// PutResult stores value under (ns, key) and reports whether it changed:
// an identical value is left alone, keeping its time, so that re-running
// the same work does not look like news. A new key adds one to the
// namespace's count (CountResults), in the same transaction.
func (s *Store) PutResult(ctx context.Context, ns, key string, value []byte) (bool, error) {
	if ns == "" || key == "" {
		return false, errors.New("store: put result: empty namespace or key")
	}
	changed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var old string
		err := tx.QueryRowContext(ctx, s.sql(lockResultSQL), ns, key).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			res, err := tx.ExecContext(ctx, insertResultSQL, ns, key, string(value), dbTime(s.now()))
			if err != nil {
				return err
			}
			changed = true
			if n, _ := res.RowsAffected(); n == 1 {
				_, err = tx.ExecContext(ctx, countAddSQL, ns, 1)
				return err
			}
			// Another writer inserted it since (PostgreSQL): update it.
		case err != nil:
			return err
		case old == string(value):
			return nil
		}
		changed = true
		_, err = tx.ExecContext(ctx, updateResultSQL, ns, key, string(value), dbTime(s.now()))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: put result %s/%s: %w", ns, key, err)
	}
	return changed, nil
}

// DeleteResult removes the result under (ns, key), reporting whether
// there was one.
func (s *Store) DeleteResult(ctx context.Context, ns, key string) (bool, error) {
	deleted := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, deleteResultSQL, ns, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			deleted = true
			_, err = tx.ExecContext(ctx, countAddSQL, ns, -n)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: delete result %s/%s: %w", ns, key, err)
	}
	return deleted, nil
}

// CountResults returns how many results ns holds, from the count kept
// with them: one row read, whatever the number of results.
func (s *Store) CountResults(ctx context.Context, ns string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, countResultsSQL, ns).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: count results %s: %w", ns, err)
	}
	return n, nil
}

const (
	resultsAfterSQL  = `SELECT key, value, updated_at FROM results WHERE ns = $1 AND key > $2 ORDER BY key LIMIT $3`
	resultsBeforeSQL = `SELECT key, value, updated_at FROM results WHERE ns = $1 AND key < $2 ORDER BY key DESC LIMIT $3`
	resultsLastSQL   = `SELECT key, value, updated_at FROM results WHERE ns = $1 ORDER BY key DESC LIMIT $2`
)

// ListResultsByKey pages through the results of ns in key order, by key
// (keyset pagination: the cost of a page is that of its rows, however
// deep it is). Forward, it returns up to limit results whose key is
// after from ("" for the first ones); backward (back), up to limit
// results whose key is before from ("" for the last ones). Either way
// they come in key order.
func (s *Store) ListResultsByKey(ctx context.Context, ns, from string, back bool, limit int) ([]Result, error) {
	if limit <= 0 {
		return nil, errors.New("store: list results: limit must be positive")
	}
	var (
		out []Result
		err error
	)
	switch {
	case !back:
		out, err = s.queryResults(ctx, resultsAfterSQL, ns, from, limit)
	case from == "":
		out, err = s.queryResults(ctx, resultsLastSQL, ns, limit)
	default:
		out, err = s.queryResults(ctx, resultsBeforeSQL, ns, from, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("store: list results %s: %w", ns, err)
	}
	if back {
		slices.Reverse(out)
	}
	return out, nil
}

// queryResults runs a query selecting key, value, updated_at.
func (s *Store) queryResults(ctx context.Context, query string, args ...any) ([]Result, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Result
	for rows.Next() {
		var (
			r  Result
			v  string
			at int64
		)
		if err := rows.Scan(&r.Key, &v, &at); err != nil {
			return nil, err
		}
		r.Value, r.UpdatedAt = []byte(v), goTime(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// changedResultsSQL walks the results of a namespace in the order they
// changed, from a keyset position (results_updated index).
const changedResultsSQL = `SELECT key, value, updated_at FROM results
WHERE ns = $1 AND (updated_at > $2 OR (updated_at = $2 AND key > $3))
ORDER BY updated_at, key LIMIT $4`

// ResultsAfter is a position in the results of a namespace in the order
// they changed: after the result (At, Key). The zero value is the start.
type ResultsAfter struct {
	At  time.Time
	Key string
}

// ListResultsChanged returns up to limit results of ns that changed after
// pos, in the order they changed (then by key), and the position to ask
// from next. Walking from the zero position reads every result once; its
// cost is that of the results returned, never of those skipped.
func (s *Store) ListResultsChanged(ctx context.Context, ns string, pos ResultsAfter, limit int) ([]Result, ResultsAfter, error) {
	if limit <= 0 {
		return nil, pos, errors.New("store: list changed results: limit must be positive")
	}
	at := int64(-1) // before every time, zero included
	if !pos.At.IsZero() || pos.Key != "" {
		at = dbTime(pos.At)
	}
	out, err := s.queryResults(ctx, changedResultsSQL, ns, at, pos.Key, limit)
	if err != nil {
		return nil, pos, fmt.Errorf("store: list changed results %s: %w", ns, err)
	}
	if len(out) > 0 {
		last := out[len(out)-1]
		pos = ResultsAfter{At: last.UpdatedAt, Key: last.Key}
	}
	return out, pos, nil
}

const recentResultsSQL = `SELECT key, value, updated_at FROM results WHERE ns = $1 ORDER BY updated_at DESC, key LIMIT $2`

// RecentResults returns the n results of ns that changed last, newest first.
func (s *Store) RecentResults(ctx context.Context, ns string, n int) ([]Result, error) {
	out, err := s.queryResults(ctx, recentResultsSQL, ns, n)
	if err != nil {
		return nil, fmt.Errorf("store: recent results %s: %w", ns, err)
	}
	return out, nil
}
