package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/vt"
)

var _ engine.Cache = (*Store)(nil)

const cacheGetSQL = `SELECT found, data, fetched_at FROM vt_objects WHERE kind = $1 AND id = $2`

// Get implements engine.Cache: the cached answer for (kind, id), if any.
func (s *Store) Get(ctx context.Context, kind vt.Kind, id string) (engine.Entry, bool, error) {
	var (
		found   bool
		data    sql.NullString
		fetched int64
	)
	err := s.db.QueryRowContext(ctx, cacheGetSQL, string(kind), id).Scan(&found, &data, &fetched)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Entry{}, false, nil
	}
	if err != nil {
		return engine.Entry{}, false, fmt.Errorf("store: get %s %s: %w", kind, id, err)
	}
	e := engine.Entry{Kind: kind, ID: id, Found: found, FetchedAt: goTime(fetched)}
	if data.Valid {
		e.Data = json.RawMessage(data.String)
	}
	return e, true, nil
}

// cachePutSQL keeps the newer answer when two instances store the same
// object.
const cachePutSQL = `INSERT INTO vt_objects (kind, id, found, data, fetched_at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (kind, id) DO UPDATE SET found = excluded.found, data = excluded.data, fetched_at = excluded.fetched_at
WHERE vt_objects.fetched_at <= excluded.fetched_at`

// Put implements engine.Cache: it stores e, replacing an older answer for
// the same object. Data is kept verbatim (a not-found entry has none).
func (s *Store) Put(ctx context.Context, e engine.Entry) error {
	if e.Kind == "" || e.ID == "" {
		return fmt.Errorf("store: put %q %q: kind and id are required", e.Kind, e.ID)
	}
	var data any
	if e.Found {
		data = text(e.Data)
	}
	if _, err := s.exec(ctx, cachePutSQL, string(e.Kind), e.ID, e.Found, data, dbTime(e.FetchedAt)); err != nil {
		return fmt.Errorf("store: put %s %s: %w", e.Kind, e.ID, err)
	}
	return nil
}

const purgeCacheSQL = `DELETE FROM vt_objects WHERE fetched_at < $1`

// PurgeCache deletes the answers fetched before olderThan and reports how
// many it deleted.
func (s *Store) PurgeCache(ctx context.Context, olderThan time.Time) (int64, error) {
	res, err := s.exec(ctx, purgeCacheSQL, dbTime(olderThan))
	if err != nil {
		return 0, fmt.Errorf("store: purge cache: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: purge cache: %w", err)
	}
	return n, nil
}

// CacheStats describes the cache's content.
type CacheStats struct {
	Entries  int64
	Found    int64 // entries holding an object
	NotFound int64 // entries recording that VirusTotal did not know the object
	ByKind   map[vt.Kind]int64
	Oldest   time.Time // fetch time of the oldest entry; zero when empty
	Newest   time.Time
}

const cacheStatsSQL = `SELECT kind, found, COUNT(*), MIN(fetched_at), MAX(fetched_at) FROM vt_objects GROUP BY kind, found`

// CacheStats counts the cached answers. It reads the whole table.
func (s *Store) CacheStats(ctx context.Context) (CacheStats, error) {
	rows, err := s.db.QueryContext(ctx, cacheStatsSQL)
	if err != nil {
		return CacheStats{}, fmt.Errorf("store: cache stats: %w", err)
	}
	defer rows.Close()
	st := CacheStats{ByKind: map[vt.Kind]int64{}}
	for rows.Next() {
		var (
			kind              string
			found             bool
			n, oldest, newest int64
		)
		if err := rows.Scan(&kind, &found, &n, &oldest, &newest); err != nil {
			return CacheStats{}, fmt.Errorf("store: cache stats: %w", err)
		}
		st.Entries += n
		if found {
			st.Found += n
		} else {
			st.NotFound += n
		}
		st.ByKind[vt.Kind(kind)] += n
		if o := goTime(oldest); st.Oldest.IsZero() || o.Before(st.Oldest) {
			st.Oldest = o
		}
		if w := goTime(newest); w.After(st.Newest) {
			st.Newest = w
		}
	}
	if err := rows.Err(); err != nil {
		return CacheStats{}, fmt.Errorf("store: cache stats: %w", err)
	}
	return st, nil
}
