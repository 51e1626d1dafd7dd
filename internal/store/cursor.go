package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

const getCursorSQL = `SELECT value FROM cursors WHERE name = $1`

// GetCursor returns the value stored under name; false when there is none.
func (s *Store) GetCursor(ctx context.Context, name string) (string, bool, error) {
	var v string
	err := s.db.QueryRowContext(ctx, getCursorSQL, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store: get cursor %q: %w", name, err)
	}
	return v, true, nil
}

const setCursorSQL = `INSERT INTO cursors (name, value, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`

// SetCursor stores value under name, replacing what was there.
func (s *Store) SetCursor(ctx context.Context, name, value string) error {
	if name == "" {
		return errors.New("store: set cursor: empty name")
	}
	if _, err := s.exec(ctx, setCursorSQL, name, value, dbTime(s.now())); err != nil {
		return fmt.Errorf("store: set cursor %q: %w", name, err)
	}
	return nil
}
