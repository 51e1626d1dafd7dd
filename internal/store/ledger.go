package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vtconnector/vtconnector/internal/engine"
)

// Ledger returns the quota ledger of the API key whose fingerprint is keyID
// (never the key itself). It keeps the accounts exactly like
// engine.MemLedger, but in the database, so that every process using the
// database shares one budget: each Take runs in one transaction that
// checks and books the month, the day and a minute slot together, so N
// instances together never exceed the limits.
//
// The minute window is a set of PerMinute slot rows, each busy from its
// Take until hold+MinuteWindow later, or MinuteWindow after Settle. Day
// and month are counter rows reset at 00:00 UTC and on the 1st. A Take
// books the month and the day with conditional upserts (refused when full)
// and then occupies a free slot; when no slot is free it takes the booking
// back, and a refused Take changes nothing else. On PostgreSQL the counter
// rows stay locked until the Take commits, so Takes of one key run one at a
// time (well under a millisecond each: far beyond any key's budget), and
// SKIP LOCKED keeps a slot from being given twice; on SQLite the Take's
// write transaction does the same.
//
// All instances sharing a key should use the same Limits: the slot rows
// follow the PerMinute of the latest Take.
func (s *Store) Ledger(keyID string) engine.Ledger { return &ledger{s: s, key: keyID} }

type ledger struct {
	s   *Store
	key string
}

// errRefused rolls back a Take that found no room.
var errRefused = errors.New("no quota")

const ledgerStateSQL = `SELECT
	COALESCE((SELECT paused_until FROM quota_keys WHERE key_id = $1), 0),
	(SELECT COUNT(*) FROM quota_slots WHERE key_id = $1)`

// ledgerCountSQL books one request in a period's counter unless it is
// full: the row is reset when the period changed, and the conditional
// update returns no row when used has reached the limit ($4 ≤ 0: none).
// The row stays locked until the Take commits.
const ledgerCountSQL = `INSERT INTO quota_counters (key_id, period, start, used) VALUES ($1, $2, $3, 1)
ON CONFLICT (key_id, period) DO UPDATE SET
	used = CASE WHEN quota_counters.start = excluded.start THEN quota_counters.used + 1 ELSE 1 END,
	start = excluded.start
WHERE quota_counters.start <> excluded.start OR quota_counters.used < $4 OR $4 <= 0
RETURNING used`

// ledgerLockKeySQL creates the key's row if needed and, on PostgreSQL,
// locks it until the transaction ends, serialising changes to the set of
// slots.
const ledgerLockKeySQL = `INSERT INTO quota_keys (key_id, paused_until) VALUES ($1, 0)
ON CONFLICT (key_id) DO UPDATE SET paused_until = quota_keys.paused_until`

const ledgerSlotsSQL = `SELECT COUNT(*), COALESCE(MAX(slot), 0) FROM quota_slots WHERE key_id = $1`

const ledgerAddSlotSQL = `INSERT INTO quota_slots (key_id, slot, busy_until, ticket) VALUES ($1, $2, 0, 0)
ON CONFLICT (key_id, slot) DO NOTHING`

// ledgerDropSlotsSQL drops the slots that free first, like MemLedger, so
// that a smaller budget holds at once.
const ledgerDropSlotsSQL = `DELETE FROM quota_slots WHERE key_id = $1 AND slot IN (
	SELECT slot FROM quota_slots WHERE key_id = $1 ORDER BY busy_until, slot LIMIT $2)`

// ledgerTakeSlotSQL occupies the first free slot (MemLedger's choice).
// On PostgreSQL, SKIP LOCKED passes over a slot another Take is occupying
// at this moment.
const ledgerTakeSlotSQL = `UPDATE quota_slots SET busy_until = $3, ticket = $4
WHERE key_id = $1 AND slot = (
	SELECT slot FROM quota_slots WHERE key_id = $1 AND busy_until <= $2 ORDER BY slot LIMIT 1 {{skip_locked}})
RETURNING slot`

// ledgerUncountSQL takes back the request booked in the day and month
// counters by this transaction.
const ledgerUncountSQL = `UPDATE quota_counters SET used = used - 1 WHERE key_id = $1`

const ledgerNextFreeSQL = `SELECT COALESCE(MIN(busy_until), 0) FROM quota_slots WHERE key_id = $1 AND busy_until > $2`

// Take implements engine.Ledger.
func (l *ledger) Take(ctx context.Context, now time.Time, lim engine.Limits, hold time.Duration) (engine.Grant, error) {
	ticket := rand.Int64N(1<<62) + 1
	if l.s.dialect == DialectPostgres {
		g, ok, err := l.takePipelined(ctx, now, lim, hold, ticket)
		if err != nil {
			return engine.Grant{}, fmt.Errorf("store: take quota: %w", err)
		}
		if ok {
			return g, nil
		}
		// The slots must be resized first: the general way.
	}
	var g engine.Grant
	err := l.s.inTx(ctx, func(tx *sql.Tx) error {
		var pausedUntil, slots int64
		if err := tx.QueryRowContext(ctx, ledgerStateSQL, l.key).Scan(&pausedUntil, &slots); err != nil {
			return err
		}
		if until := goTime(pausedUntil); now.Before(until) {
			g = engine.Grant{RetryAt: until, Window: engine.WindowCooldown}
			return errRefused
		}
		month := engine.NextMonth(now).AddDate(0, -1, 0)
		if ok, err := l.count(ctx, tx, engine.WindowMonth, month, lim.PerMonth); err != nil || !ok {
			g = engine.Grant{RetryAt: engine.NextMonth(now), Window: engine.WindowMonth}
			return cmpErr(err, errRefused)
		}
		day := engine.NextDay(now).AddDate(0, 0, -1)
		if ok, err := l.count(ctx, tx, engine.WindowDay, day, lim.PerDay); err != nil || !ok {
			g = engine.Grant{RetryAt: engine.NextDay(now), Window: engine.WindowDay}
			return cmpErr(err, errRefused)
		}
		if lim.PerMinute > 0 {
			if slots != int64(lim.PerMinute) {
				if err := l.resize(ctx, tx, lim.PerMinute); err != nil {
					return err
				}
			}
			var slot int64
			err := tx.QueryRowContext(ctx, l.s.sql(ledgerTakeSlotSQL), l.key, dbTime(now), dbTime(now.Add(hold+engine.MinuteWindow)), ticket).Scan(&slot)
			if errors.Is(err, sql.ErrNoRows) {
				var next int64
				if err := tx.QueryRowContext(ctx, ledgerNextFreeSQL, l.key, dbTime(now)).Scan(&next); err != nil {
					return err
				}
				g = engine.Grant{RetryAt: goTime(next), Window: engine.WindowMinute}
				if next == 0 {
					// Every free slot is being taken by another
					// instance right now; one may roll back.
					g.RetryAt = now.Add(50 * time.Millisecond)
				}
				// Keep the resized slots, like MemLedger, but not
				// the request booked in the day and month.
				_, err := tx.ExecContext(ctx, ledgerUncountSQL, l.key)
				return err
			}
			if err != nil {
				return err
			}
		}
		g = engine.Grant{OK: true, Ticket: ticket}
		return nil
	})
	if errors.Is(err, errRefused) {
		return g, nil
	}
	if err != nil {
		return engine.Grant{}, fmt.Errorf("store: take quota: %w", err)
	}
	return g, nil
}

// takePipelined is Take on PostgreSQL in two round trips instead of five
// or more: BEGIN, the state, the month's and the day's booking and the
// slot are sent as one batch, and the answers decide between COMMIT and
// ROLLBACK (which also undoes the bookings of a refused request). The
// counter rows every instance books stay locked for one round trip, not
// three. ok is false, nothing done, when the key's slots must first be
// resized to the budget (its first use, or a new budget).
func (l *ledger) takePipelined(ctx context.Context, now time.Time, lim engine.Limits, hold time.Duration, ticket int64) (g engine.Grant, ok bool, err error) {
	month := engine.NextMonth(now).AddDate(0, -1, 0)
	day := engine.NextDay(now).AddDate(0, 0, -1)
	err = l.s.pipeline(ctx, func(pc *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue(ledgerStateSQL, l.key)
		b.Queue(ledgerCountSQL, l.key, engine.WindowMonth, dbTime(month), lim.PerMonth)
		b.Queue(ledgerCountSQL, l.key, engine.WindowDay, dbTime(day), lim.PerDay)
		if lim.PerMinute > 0 {
			b.Queue(l.s.sql(ledgerTakeSlotSQL), l.key, dbTime(now), dbTime(now.Add(hold+engine.MinuteWindow)), ticket)
			b.Queue(ledgerNextFreeSQL, l.key, dbTime(now))
		}
		br := pc.SendBatch(ctx, b)
		var (
			pausedUntil, slots, slot, next int64
			monthOK, dayOK, slotOK         bool
		)
		err := func() error {
			defer br.Close()
			if _, err := br.Exec(); err != nil {
				return err
			}
			if err := br.QueryRow().Scan(&pausedUntil, &slots); err != nil {
				return err
			}
			var used int64
			for _, okp := range []*bool{&monthOK, &dayOK} {
				err := br.QueryRow().Scan(&used)
				if err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
				*okp = err == nil
			}
			if lim.PerMinute > 0 {
				err := br.QueryRow().Scan(&slot)
				if err != nil && !errors.Is(err, pgx.ErrNoRows) {
					return err
				}
				slotOK = err == nil
				if err := br.QueryRow().Scan(&next); err != nil {
					return err
				}
			}
			return br.Close()
		}()
		if err != nil {
			return err // pipeline rolls back
		}
		ok = true
		switch {
		case now.Before(goTime(pausedUntil)):
			g = engine.Grant{RetryAt: goTime(pausedUntil), Window: engine.WindowCooldown}
		case !monthOK:
			g = engine.Grant{RetryAt: engine.NextMonth(now), Window: engine.WindowMonth}
		case !dayOK:
			g = engine.Grant{RetryAt: engine.NextDay(now), Window: engine.WindowDay}
		case lim.PerMinute > 0 && slots != int64(lim.PerMinute):
			ok = false
		case lim.PerMinute > 0 && !slotOK:
			g = engine.Grant{RetryAt: goTime(next), Window: engine.WindowMinute}
			if next == 0 {
				// Every free slot is being taken by another
				// instance right now; one may roll back.
				g.RetryAt = now.Add(50 * time.Millisecond)
			}
		default:
			g = engine.Grant{OK: true, Ticket: ticket}
			_, err := pc.Exec(ctx, "COMMIT")
			return err
		}
		_, err = pc.Exec(ctx, "ROLLBACK")
		return err
	})
	if err != nil {
		return engine.Grant{}, false, err
	}
	return g, ok, nil
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// count books one request in the period starting at start; false when
// limit (> 0) is reached.
func (l *ledger) count(ctx context.Context, tx *sql.Tx, period string, start time.Time, limit int) (bool, error) {
	var used int64
	err := tx.QueryRowContext(ctx, ledgerCountSQL, l.key, period, dbTime(start), limit).Scan(&used)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// resize makes the key's slot rows n.
func (l *ledger) resize(ctx context.Context, tx *sql.Tx, n int) error {
	if _, err := tx.ExecContext(ctx, ledgerLockKeySQL, l.key); err != nil {
		return err
	}
	var have, last int
	if err := tx.QueryRowContext(ctx, ledgerSlotsSQL, l.key).Scan(&have, &last); err != nil {
		return err
	}
	for ; have < n; have++ {
		last++
		if _, err := tx.ExecContext(ctx, ledgerAddSlotSQL, l.key, last); err != nil {
			return err
		}
	}
	if have > n {
		if _, err := tx.ExecContext(ctx, ledgerDropSlotsSQL, l.key, have-n); err != nil {
			return err
		}
	}
	return nil
}

const ledgerSettleSQL = `UPDATE quota_slots SET busy_until = $3 WHERE key_id = $1 AND ticket = $2`

// Settle implements engine.Ledger.
func (l *ledger) Settle(ctx context.Context, ticket int64, done time.Time) error {
	if _, err := l.s.exec(ctx, ledgerSettleSQL, l.key, ticket, dbTime(done.Add(engine.MinuteWindow))); err != nil {
		return fmt.Errorf("store: settle quota: %w", err)
	}
	return nil
}

const ledgerPauseSQL = `INSERT INTO quota_keys (key_id, paused_until) VALUES ($1, $2)
ON CONFLICT (key_id) DO UPDATE SET paused_until = excluded.paused_until
WHERE quota_keys.paused_until < excluded.paused_until`

// Pause implements engine.Ledger.
func (l *ledger) Pause(ctx context.Context, until time.Time) error {
	if _, err := l.s.exec(ctx, ledgerPauseSQL, l.key, dbTime(until)); err != nil {
		return fmt.Errorf("store: pause quota: %w", err)
	}
	return nil
}

const quotaUsageSQL = `SELECT
	(SELECT COUNT(*) FROM quota_slots WHERE key_id = $1 AND busy_until > $2),
	COALESCE((SELECT used FROM quota_counters WHERE key_id = $1 AND period = 'day' AND start = $3), 0),
	COALESCE((SELECT used FROM quota_counters WHERE key_id = $1 AND period = 'month' AND start = $4), 0),
	COALESCE((SELECT paused_until FROM quota_keys WHERE key_id = $1), 0)`

// QuotaUsage reports the ledger of keyID at now, like MemLedger.Usage.
func (s *Store) QuotaUsage(ctx context.Context, keyID string, now time.Time) (engine.Usage, error) {
	var (
		u      engine.Usage
		paused int64
	)
	day := engine.NextDay(now).AddDate(0, 0, -1)
	month := engine.NextMonth(now).AddDate(0, -1, 0)
	err := s.db.QueryRowContext(ctx, quotaUsageSQL, keyID, dbTime(now), dbTime(day), dbTime(month)).
		Scan(&u.MinuteInUse, &u.DayUsed, &u.MonthUsed, &paused)
	if err != nil {
		return engine.Usage{}, fmt.Errorf("store: quota usage: %w", err)
	}
	u.PausedUntil = goTime(paused)
	return u, nil
}

// ledgerSeedSQL raises a period's counter to VirusTotal's count: reset to
// it when the stored period is older, raised to it when lower, never
// lowered, and left alone when the stored period is newer.
const ledgerSeedSQL = `INSERT INTO quota_counters (key_id, period, start, used) VALUES ($1, $2, $3, $4)
ON CONFLICT (key_id, period) DO UPDATE SET
	used = CASE WHEN quota_counters.start = excluded.start AND quota_counters.used >= excluded.used
		THEN quota_counters.used ELSE excluded.used END,
	start = excluded.start
WHERE quota_counters.start <= excluded.start`

// SeedUsage implements engine.UsageSeeder: every process sharing the key
// sees the use that VirusTotal counted (another client's included).
func (l *ledger) SeedUsage(ctx context.Context, now time.Time, dayUsed, monthUsed int64) error {
	day := engine.NextDay(now).AddDate(0, 0, -1)
	month := engine.NextMonth(now).AddDate(0, -1, 0)
	err := l.s.inTx(ctx, func(tx *sql.Tx) error {
		for _, p := range []struct {
			period string
			start  time.Time
			used   int64
		}{{engine.WindowDay, day, dayUsed}, {engine.WindowMonth, month, monthUsed}} {
			if p.used <= 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, ledgerSeedSQL, l.key, p.period, dbTime(p.start), p.used); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: seed quota usage: %w", err)
	}
	return nil
}
