package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

const (
	ownedLeasesSQL  = `SELECT id FROM work_items WHERE state = 'leased' AND lease_owner = $1`
	releaseOwnedSQL = `UPDATE work_items SET state = 'queued', next_attempt_at = $3, lease_owner = NULL, lease_until = NULL, updated_at = $3
WHERE id = $1 AND state = 'leased' AND lease_owner = $2`
)

// ReleaseOwned hands back, without counting an attempt, every item leased
// by exactly owner except those in keep (the items its worker still
// works). A worker calls it after a claim whose answer it never got: the
// claim may have committed, leaving items leased to a worker that does
// not know it holds them, until their lease expires (minutes). It returns
// how many items it handed back.
func (s *Store) ReleaseOwned(ctx context.Context, owner string, keep []int64) (int64, error) {
	if owner == "" {
		return 0, errors.New("store: release owned leases: empty owner")
	}
	ids, err := func() ([]int64, error) {
		rows, err := s.db.QueryContext(ctx, ownedLeasesSQL, owner)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return nil, err
			}
			if !slices.Contains(keep, id) {
				ids = append(ids, id)
			}
		}
		return ids, rows.Err()
	}()
	if err != nil {
		return 0, fmt.Errorf("store: release owned leases: %w", err)
	}
	var n int64
	now := dbTime(s.now())
	for _, id := range ids {
		res, err := s.exec(ctx, releaseOwnedSQL, id, owner, now)
		if err != nil {
			return n, fmt.Errorf("store: release lease of item %d: %w", id, err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return n, fmt.Errorf("store: release lease of item %d: %w", id, err)
		}
		n += k
	}
	return n, nil
}
