package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Item states. An item is open while queued, pending, retry or leased, and
// finished when done, not_found or failed. Only Complete finishes an item,
// and only Requeue reopens a finished one.
const (
	StateQueued   = "queued"    // ready at next_attempt_at (new, requeued, or back after an auth error)
	StatePending  = "pending"   // VirusTotal is analysing; poll at next_attempt_at
	StateRetry    = "retry"     // rate-limited or failed transiently; retry at next_attempt_at
	StateLeased   = "leased"    // a worker holds it until lease_until
	StateDone     = "done"      // finished with an answer
	StateNotFound = "not_found" // finished: VirusTotal does not know the object
	StateFailed   = "failed"    // finished: a permanent per-item error
)

// NewItem is work to enqueue.
type NewItem struct {
	Kind      string          // what kind of work, e.g. "cb.binary"
	Key       string          // unique per kind, e.g. an MD5
	Payload   json.RawMessage // what the worker needs; optional
	Priority  int             // higher first
	NotBefore time.Time       // optional: not ready before then
	// DoneAt, when set, records work done elsewhere (e.g. imported from
	// another tool): the item is added already done, finished at DoneAt,
	// so that RequeueOlder treats it like work this store saw finish.
	DoneAt time.Time
}

// Item is a queued piece of work.
type Item struct {
	ID            int64
	Kind          string
	Key           string
	Payload       json.RawMessage
	Result        json.RawMessage // set by Done
	Priority      int
	State         string
	Attempts      int // failed attempts: transient and permanent errors, expired leases
	NextAttemptAt time.Time
	LeaseOwner    string
	LeaseUntil    time.Time
	LastError     string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

const itemColumns = `id, kind, key, payload, result, priority, state, attempts, next_attempt_at, lease_owner, lease_until, last_error, created_at, updated_at`

func scanItem(sc interface{ Scan(...any) error }) (Item, error) {
	var (
		it                          Item
		payload, result, owner, msg sql.NullString
		next, until                 sql.NullInt64
		created, updated            int64
	)
	err := sc.Scan(&it.ID, &it.Kind, &it.Key, &payload, &result, &it.Priority, &it.State, &it.Attempts,
		&next, &owner, &until, &msg, &created, &updated)
	if err != nil {
		return Item{}, err
	}
	if payload.Valid {
		it.Payload = json.RawMessage(payload.String)
	}
	if result.Valid {
		it.Result = json.RawMessage(result.String)
	}
	it.NextAttemptAt = goTime(next.Int64)
	it.LeaseOwner = owner.String
	it.LeaseUntil = goTime(until.Int64)
	it.LastError = msg.String
	it.CreatedAt, it.UpdatedAt = goTime(created), goTime(updated)
	return it, nil
}

const enqueueSQL = `INSERT INTO work_items (kind, key, payload, priority, state, attempts, next_attempt_at, created_at, updated_at)
VALUES ($1, $2, $3, $4, $7, 0, $5, $6, $8)
ON CONFLICT (kind, key) DO NOTHING`

// Enqueue adds an item unless one with the same kind and key exists (open
// or finished); it reports whether it added one. Finished items come back
// only through Requeue.
func (s *Store) Enqueue(ctx context.Context, it NewItem) (bool, error) {
	if err := it.validate(); err != nil {
		return false, fmt.Errorf("store: enqueue: %w", err)
	}
	res, err := s.exec(ctx, enqueueSQL, s.enqueueArgs(it)...)
	if err != nil {
		return false, fmt.Errorf("store: enqueue %s %s: %w", it.Kind, it.Key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: enqueue %s %s: %w", it.Kind, it.Key, err)
	}
	return n == 1, nil
}

// EnqueueMany enqueues items in one transaction, like Enqueue each, and
// reports how many it added.
func (s *Store) EnqueueMany(ctx context.Context, items []NewItem) (int, error) {
	for _, it := range items {
		if err := it.validate(); err != nil {
			return 0, fmt.Errorf("store: enqueue: %w", err)
		}
	}
	added := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		added = 0
		st, err := tx.PrepareContext(ctx, enqueueSQL)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, it := range items {
			res, err := st.ExecContext(ctx, s.enqueueArgs(it)...)
			if err != nil {
				return fmt.Errorf("%s %s: %w", it.Kind, it.Key, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			added += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: enqueue %d items: %w", len(items), err)
	}
	return added, nil
}

func (it NewItem) validate() error {
	if it.Kind == "" || it.Key == "" {
		return fmt.Errorf("item %q %q: kind and key are required", it.Kind, it.Key)
	}
	return nil
}

func (s *Store) enqueueArgs(it NewItem) []any {
	now := s.now()
	next := now
	if it.NotBefore.After(now) {
		next = it.NotBefore
	}
	state, updated := StateQueued, now
	if !it.DoneAt.IsZero() {
		state, updated = StateDone, it.DoneAt
	}
	return []any{it.Kind, it.Key, text(it.Payload), it.Priority, dbTime(next), dbTime(now), state, dbTime(updated)}
}

const getItemSQL = `SELECT ` + itemColumns + ` FROM work_items WHERE kind = $1 AND key = $2`

// GetItem returns the item of kind and key; false when there is none.
func (s *Store) GetItem(ctx context.Context, kind, key string) (Item, bool, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, getItemSQL, kind, key))
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, false, nil
	}
	if err != nil {
		return Item{}, false, fmt.Errorf("store: get item %s %s: %w", kind, key, err)
	}
	return it, true, nil
}

// claimSQL picks ready items in priority order and leases them in one
// statement. The repeated state list matches the work_items_open index's
// predicate, so that both databases walk that index. On PostgreSQL, SKIP
// LOCKED lets concurrent claimers pass over each other's rows; on SQLite
// the statement holds the database's write lock. A lease that expired
// counts as a failed attempt.
const claimSQL = `WITH picked AS MATERIALIZED (
	SELECT id FROM work_items
	WHERE state IN ('queued', 'pending', 'retry', 'leased')
	  AND ((state <> 'leased' AND next_attempt_at <= $1) OR (state = 'leased' AND lease_until <= $1))
	  AND NOT EXISTS (SELECT 1 FROM queue_state WHERE paused)
	  {{kinds}}
	ORDER BY priority DESC, id
	LIMIT $4
	{{skip_locked}}
)
UPDATE work_items SET
	state = 'leased',
	attempts = CASE WHEN state = 'leased' THEN attempts + 1 ELSE attempts END,
	last_error = CASE WHEN state = 'leased' THEN 'lease of ' || lease_owner || ' expired' ELSE last_error END,
	lease_owner = $2,
	lease_until = $3,
	updated_at = $1
WHERE id IN (SELECT id FROM picked)
RETURNING ` + itemColumns

// Claim leases up to n ready items to owner for lease, highest priority
// first, then oldest. Ready means queued, pending or retry whose
// next_attempt_at has come, or leased with an expired lease. kinds limits
// the kinds claimed (none: any). While the queue is paused Claim returns
// nothing. owner must be unique to the worker: Complete and ExtendLease
// check it.
func (s *Store) Claim(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]Item, error) {
	if owner == "" || lease <= 0 {
		return nil, fmt.Errorf("store: claim work: owner %q and lease %s: both are required", owner, lease)
	}
	if n <= 0 {
		return nil, nil
	}
	now := s.now()
	args := []any{dbTime(now), owner, dbTime(now.Add(lease)), n}
	filter := ""
	if len(kinds) > 0 {
		ph := make([]string, len(kinds))
		for i, k := range kinds {
			args = append(args, k)
			ph[i] = "$" + strconv.Itoa(len(args))
		}
		filter = "AND kind IN (" + strings.Join(ph, ", ") + ")"
		if len(kinds) == 1 { // walks work_items_open_kind in order
			filter = "AND kind = " + ph[0]
		}
	}
	query := strings.Replace(claimSQL, "{{kinds}}", filter, 1)
	var items []Item
	scan := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			it, err := scanItem(rows)
			if err != nil {
				return err
			}
			items = append(items, it)
		}
		return rows.Err()
	}
	var err error
	if s.dialect == DialectPostgres {
		items, err = s.claimPostgres(ctx, s.sql(query), args)
	} else {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			rows, err := tx.QueryContext(ctx, s.sql(query), args...)
			if err != nil {
				return err
			}
			return scan(rows)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: claim work: %w", err)
	}
	slices.SortFunc(items, func(a, b Item) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(a.ID, b.ID))
	})
	return items, nil
}

// claimPostgres runs the claim in one round trip: BEGIN, SET LOCAL, the
// claim and COMMIT sent together as one pipelined batch. The claim must
// walk work_items_open_kind in order and stop at the first ready items;
// with statistics that lag behind a backlog (a burst of enqueues),
// PostgreSQL may prefer to fetch every open item of the kind and sort
// them: SET LOCAL forbids the sort for this transaction only.
func (s *Store) claimPostgres(ctx context.Context, query string, args []any) ([]Item, error) {
	var items []Item
	err := s.pipeline(ctx, func(pc *pgx.Conn) error {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		b.Queue("SET LOCAL enable_sort = off")
		b.Queue(query, args...)
		b.Queue("COMMIT")
		br := pc.SendBatch(ctx, b)
		defer br.Close()
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			it, err := scanItem(rows)
			if err != nil {
				rows.Close()
				return err
			}
			items = append(items, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := br.Exec(); err != nil {
			return err
		}
		return br.Close()
	})
	if err != nil {
		return nil, err
	}
	return items, nil
}

const extendLeaseSQL = `UPDATE work_items SET lease_until = $3, updated_at = $4
WHERE id = $1 AND state = 'leased' AND lease_owner = $2`

// ExtendLease renews owner's lease on item id for lease from now. It
// returns ErrLeaseLost when owner no longer holds it.
func (s *Store) ExtendLease(ctx context.Context, id int64, owner string, lease time.Duration) error {
	now := s.now()
	res, err := s.exec(ctx, extendLeaseSQL, id, owner, dbTime(now.Add(lease)), dbTime(now))
	if err != nil {
		return fmt.Errorf("store: extend lease of item %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: extend lease of item %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("store: extend lease of item %d: %w", id, ErrLeaseLost)
	}
	return nil
}

// Outcome is how an attempt at an item ended; its constructors say what
// happens next. None of them drops the item.
type Outcome struct {
	kind    outcomeKind
	at      time.Time
	payload json.RawMessage
	err     error
}

type outcomeKind int

const (
	outcomeDone outcomeKind = iota + 1
	outcomeNotFound
	outcomePending
	outcomeRateLimited
	outcomeTransient
	outcomeAuth
	outcomePermanent
	outcomeHandBack
)

// Done finishes the item with an answer; result is stored when not nil.
func Done(result json.RawMessage) Outcome { return Outcome{kind: outcomeDone, payload: result} }

// NotFound finishes the item: VirusTotal does not know the object.
func NotFound() Outcome { return Outcome{kind: outcomeNotFound} }

// PendingAnalysis parks the item until pollAt, e.g. while VirusTotal
// analyses an upload; payload, when not nil, replaces the item's (say, to
// remember the analysis id). The attempt is not counted.
func PendingAnalysis(pollAt time.Time, payload json.RawMessage) Outcome {
	return Outcome{kind: outcomePending, at: pollAt, payload: payload}
}

// RateLimited parks the item until retryAt. The attempt is not counted.
func RateLimited(retryAt time.Time) Outcome { return Outcome{kind: outcomeRateLimited, at: retryAt} }

// Transient counts a failed attempt and retries after an exponential
// backoff (see WithBackoff), however many attempts fail.
func Transient(err error) Outcome { return Outcome{kind: outcomeTransient, err: err} }

// AuthError puts the item back in the queue, uncounted, and pauses the
// whole queue until Resume: a bad key or missing privilege fails every
// item alike, so nothing is claimed until someone fixes it.
func AuthError(err error) Outcome { return Outcome{kind: outcomeAuth, err: err} }

// Permanent finishes the item as failed with err, e.g. a request
// VirusTotal rejects whatever the time. Requeue brings it back.
func Permanent(err error) Outcome { return Outcome{kind: outcomePermanent, err: err} }

// HandBack returns the item to the queue, ready at once, without counting
// an attempt: the worker stops (shutdown) before it could finish. The
// payload is kept as it was.
func HandBack() Outcome { return Outcome{kind: outcomeHandBack} }

func (o Outcome) String() string {
	switch o.kind {
	case outcomeDone:
		return "done"
	case outcomeNotFound:
		return "not found"
	case outcomePending:
		return "pending analysis"
	case outcomeRateLimited:
		return "rate limited"
	case outcomeTransient:
		return "transient error"
	case outcomeAuth:
		return "auth error"
	case outcomePermanent:
		return "permanent error"
	case outcomeHandBack:
		return "handed back"
	}
	return "invalid outcome"
}

func (o Outcome) message() string {
	if o.err == nil {
		return o.String()
	}
	return o.err.Error()
}

const leaseHeldSQL = `SELECT attempts FROM work_items WHERE id = $1 AND state = 'leased' AND lease_owner = $2 {{for_update}}`

// completeSQL records an outcome if owner ($9) still holds the lease.
const completeSQL = `UPDATE work_items SET
	state = $2, attempts = attempts + $3, next_attempt_at = $4,
	payload = COALESCE($5, payload), result = COALESCE($6, result), last_error = $7,
	lease_owner = NULL, lease_until = NULL, updated_at = $8
WHERE id = $1 AND state = 'leased' AND lease_owner = $9`

const pauseQueueSQL = `INSERT INTO queue_state (id, paused, reason, since) VALUES (1, TRUE, $1, $2)
ON CONFLICT (id) DO UPDATE SET paused = TRUE, reason = excluded.reason, since = excluded.since
WHERE NOT queue_state.paused`

// Complete records the outcome of owner's attempt at item id, in one
// transaction. It returns ErrLeaseLost, changing nothing, when owner does
// not hold the lease (wrong owner, or the lease expired and another worker
// claimed the item). A lease that expired but was not claimed again is
// still the owner's.
//
// Processing is at-least-once: a worker that dies after its side effect
// but before Complete leaves the item to be claimed again when the lease
// expires. Completion is exactly-once: of all the attempts at an item, one
// Complete finishes it, and the others get ErrLeaseLost.
func (s *Store) Complete(ctx context.Context, id int64, owner string, o Outcome) error {
	return s.complete(ctx, id, owner, o, nil)
}

// complete is Complete with also, when not nil, run in the same
// transaction after the lease check: what it writes is committed if and
// only if the outcome is.
func (s *Store) complete(ctx context.Context, id int64, owner string, o Outcome, also func(tx *sql.Tx) error) error {
	if o.kind == 0 {
		return fmt.Errorf("store: complete item %d: invalid outcome (use Done, NotFound, …)", id)
	}
	now := s.now()
	if s.dialect == DialectPostgres && also == nil && o.kind != outcomeTransient && o.kind != outcomeAuth {
		// One statement, a transaction of its own: no BEGIN and COMMIT
		// round trips.
		c := Completion{id, owner, o}
		state, next, inc, payload, result, msg := s.outcomeColumns(now, c)
		res, err := s.db.ExecContext(ctx, completeSQL, id, state, inc, dbTime(next), payload, result, msg, dbTime(now), owner)
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 0 {
				err = ErrLeaseLost
			}
		}
		if err != nil {
			return fmt.Errorf("store: complete item %d as %s: %w", id, o, err)
		}
		return nil
	}
	paused := false // by this outcome
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if paused, err = s.completeTx(ctx, tx, now, Completion{id, owner, o}); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: complete item %d as %s: %w", id, o, err)
	}
	if paused {
		s.log.Error("work queue paused until resumed: VirusTotal refused the key", "item", id, "error", o.message())
	}
	return nil
}

// Completion is one outcome for CompleteMany.
type Completion struct {
	ID      int64
	Owner   string
	Outcome Outcome
}

// CompleteMany records several outcomes in one transaction, as Complete
// each would: one commit (one fsync on SQLite) for the lot. errs[i] is
// cs[i]'s own error, ErrLeaseLost when its owner no longer holds it (the
// others are recorded all the same). err is an error of the transaction
// as a whole: then nothing was recorded.
func (s *Store) CompleteMany(ctx context.Context, cs []Completion) (errs []error, err error) {
	for _, c := range cs {
		if c.Outcome.kind == 0 {
			return nil, fmt.Errorf("store: complete item %d: invalid outcome (use Done, NotFound, …)", c.ID)
		}
	}
	now := s.now()
	// Most outcomes are recorded by one statement for the lot; a
	// transient error (its backoff depends on the attempts so far) and an
	// auth error (it pauses the queue) one by one, in id order.
	var bulk, single []int
	for i, c := range cs {
		switch c.Outcome.kind {
		case outcomeTransient, outcomeAuth:
			single = append(single, i)
		default:
			bulk = append(bulk, i)
		}
	}
	slices.SortFunc(single, func(a, b int) int { return cmp.Compare(cs[a].ID, cs[b].ID) })
	if s.dialect == DialectPostgres && len(single) == 0 && len(bulk) <= maxBulkComplete {
		// One statement is a transaction of its own: no BEGIN and
		// COMMIT round trips.
		errs = make([]error, len(cs))
		if err := s.completeBulk(ctx, s.db, now, cs, bulk, errs); err != nil {
			return nil, fmt.Errorf("store: complete %d items: %w", len(cs), err)
		}
		return errs, nil
	}
	var pausedBy []Completion
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		errs, pausedBy = make([]error, len(cs)), nil
		for len(bulk) > 0 {
			n := min(len(bulk), maxBulkComplete)
			if err := s.completeBulk(ctx, tx, now, cs, bulk[:n], errs); err != nil {
				return err
			}
			bulk = bulk[n:]
		}
		for _, i := range single {
			c := cs[i]
			paused, err := s.completeTx(ctx, tx, now, c)
			switch {
			case errors.Is(err, ErrLeaseLost):
				errs[i] = fmt.Errorf("store: complete item %d as %s: %w", c.ID, c.Outcome, err)
			case err != nil:
				return fmt.Errorf("item %d as %s: %w", c.ID, c.Outcome, err)
			case paused:
				pausedBy = append(pausedBy, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: complete %d items: %w", len(cs), err)
	}
	for _, c := range pausedBy {
		s.log.Error("work queue paused until resumed: VirusTotal refused the key", "item", c.ID, "error", c.Outcome.message())
	}
	return errs, nil
}

// maxBulkComplete bounds the rows of one completeBulkSQL (9 parameters
// each).
const maxBulkComplete = 200

// completeBulkSQL records the outcomes listed in v, each if its owner
// still holds the lease, and returns the ids it recorded. Only a leased
// item has a lease_owner. The ids are also listed in full: both databases
// then fetch the rows by primary key, whatever their statistics say
// (a join on the open-items index would read every open item).
const completeBulkSQL = `WITH v (id, owner, state, inc, next, payload, result, msg) AS (VALUES {{rows}})
UPDATE work_items SET
	state = v.state, attempts = work_items.attempts + v.inc, next_attempt_at = v.next,
	payload = COALESCE(v.payload, work_items.payload), result = COALESCE(v.result, work_items.result),
	last_error = v.msg, lease_owner = NULL, lease_until = NULL, updated_at = $1
FROM v
WHERE work_items.id IN ({{ids}}) AND work_items.id = v.id AND work_items.lease_owner = v.owner
RETURNING work_items.id`

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// completeBulk records the outcomes cs[idx] (none transient or auth) in
// one statement; errs gets ErrLeaseLost for those it could not record.
func (s *Store) completeBulk(ctx context.Context, tx querier, now time.Time, cs []Completion, idx []int, errs []error) error {
	args := []any{dbTime(now)}
	rows, ids := make([]string, len(idx)), make([]string, len(idx))
	for k, i := range idx {
		c := cs[i]
		state, next, inc, payload, result, msg := s.outcomeColumns(now, c)
		p := len(args)
		rows[k] = fmt.Sprintf("(CAST($%d AS BIGINT), CAST($%d AS TEXT), CAST($%d AS TEXT), CAST($%d AS INTEGER), CAST($%d AS BIGINT), CAST($%d AS TEXT), CAST($%d AS TEXT), CAST($%d AS TEXT))",
			p+1, p+2, p+3, p+4, p+5, p+6, p+7, p+8)
		ids[k] = fmt.Sprintf("$%d", p+1)
		args = append(args, c.ID, c.Owner, state, inc, dbTime(next), payload, result, msg)
	}
	q := strings.NewReplacer("{{rows}}", strings.Join(rows, ", "), "{{ids}}", strings.Join(ids, ", ")).Replace(completeBulkSQL)
	res, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer res.Close()
	recorded := make(map[int64]bool, len(idx))
	for res.Next() {
		var id int64
		if err := res.Scan(&id); err != nil {
			return err
		}
		recorded[id] = true
	}
	if err := res.Err(); err != nil {
		return err
	}
	for _, i := range idx {
		if !recorded[cs[i].ID] {
			errs[i] = fmt.Errorf("store: complete item %d as %s: %w", cs[i].ID, cs[i].Outcome, ErrLeaseLost)
		}
	}
	return nil
}

// outcomeColumns are what an outcome writes, besides the attempts of a
// transient error (see completeTx).
func (s *Store) outcomeColumns(now time.Time, c Completion) (state string, next time.Time, inc int, payload, result, msg any) {
	o := c.Outcome
	next = now
	switch o.kind {
	case outcomeDone:
		state, result = StateDone, text(o.payload)
	case outcomeNotFound:
		state = StateNotFound
	case outcomePending:
		state, next, payload = StatePending, o.at, text(o.payload)
	case outcomeRateLimited:
		state, next = StateRetry, o.at
		msg = "rate limited until " + o.at.UTC().Format(time.RFC3339)
	case outcomeTransient:
		inc = 1
		state, msg = StateRetry, o.message()
	case outcomeAuth:
		state, msg = StateQueued, o.message()
	case outcomePermanent:
		inc = 1
		state, msg = StateFailed, o.message()
	case outcomeHandBack:
		state, msg = StateQueued, "handed back by "+c.Owner+" (stopping)"
	}
	if next.Before(now) {
		next = now
	}
	return state, next, inc, payload, result, msg
}

// completeTx records one outcome in tx. It returns ErrLeaseLost, changing
// nothing, when c.Owner does not hold the lease, and whether this outcome
// paused the queue.
func (s *Store) completeTx(ctx context.Context, tx *sql.Tx, now time.Time, c Completion) (paused bool, err error) {
	id, owner, o := c.ID, c.Owner, c.Outcome
	state, next, inc, payload, result, msg := s.outcomeColumns(now, c)
	if o.kind == outcomeTransient {
		// The backoff depends on the attempts so far: read them (and
		// lock the row) first.
		var attempts int
		err = tx.QueryRowContext(ctx, s.sql(leaseHeldSQL), id, owner).Scan(&attempts)
		if errors.Is(err, sql.ErrNoRows) {
			return false, ErrLeaseLost
		}
		if err != nil {
			return false, err
		}
		next = now.Add(s.backoff.Nth(attempts + 1))
	}
	// One statement checks the lease and records the outcome.
	res, err := tx.ExecContext(ctx, completeSQL, id, state, inc, dbTime(next), payload, result, msg, dbTime(now), owner)
	if err != nil {
		return false, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, err
	} else if n == 0 {
		return false, ErrLeaseLost
	}
	if o.kind == outcomeAuth {
		res, err := tx.ExecContext(ctx, pauseQueueSQL, o.message(), dbTime(now))
		if err != nil {
			return false, fmt.Errorf("pause queue: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, fmt.Errorf("pause queue: %w", err)
		}
		paused = n > 0
	}
	return paused, nil
}

// PauseState says whether the queue is paused.
type PauseState struct {
	Paused bool
	Reason string
	Since  time.Time
}

const pausedSQL = `SELECT paused, reason, since FROM queue_state WHERE id = 1`

// Paused reports whether the queue is paused, why and since when.
func (s *Store) Paused(ctx context.Context) (PauseState, error) {
	var (
		p     PauseState
		since int64
	)
	err := s.db.QueryRowContext(ctx, pausedSQL).Scan(&p.Paused, &p.Reason, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return PauseState{}, nil
	}
	if err != nil {
		return PauseState{}, fmt.Errorf("store: read queue pause: %w", err)
	}
	if p.Paused {
		p.Since = goTime(since)
	}
	return p, nil
}

// Pause stops Claim from handing out work until Resume, e.g. for
// maintenance. An existing pause keeps its reason.
func (s *Store) Pause(ctx context.Context, reason string) error {
	if _, err := s.exec(ctx, pauseQueueSQL, reason, dbTime(s.now())); err != nil {
		return fmt.Errorf("store: pause queue: %w", err)
	}
	s.log.Warn("work queue paused", "reason", reason)
	return nil
}

const resumeSQL = `UPDATE queue_state SET paused = FALSE, reason = '', since = $1 WHERE id = 1`

// Resume lifts a pause.
func (s *Store) Resume(ctx context.Context) error {
	if _, err := s.exec(ctx, resumeSQL, dbTime(s.now())); err != nil {
		return fmt.Errorf("store: resume queue: %w", err)
	}
	s.log.Info("work queue resumed")
	return nil
}

const requeueSQL = `UPDATE work_items SET state = 'queued', attempts = 0, next_attempt_at = $1, last_error = NULL, updated_at = $1
WHERE state IN ('done', 'not_found', 'failed') AND ($2 = '' OR state = $2) AND ($3 = '' OR kind = $3) AND updated_at < $4`

// Requeue puts finished items back in the queue, ready now, with their
// attempts reset: those in state (done, not_found or failed; empty: any of
// them) of kind (empty: any). It reports how many.
func (s *Store) Requeue(ctx context.Context, state, kind string) (int64, error) {
	return s.RequeueOlder(ctx, state, kind, time.Time{})
}

// RequeueOlder is Requeue limited to items finished before before (zero:
// any time), e.g. verdicts old enough to be looked at again.
func (s *Store) RequeueOlder(ctx context.Context, state, kind string, before time.Time) (int64, error) {
	switch state {
	case "", StateDone, StateNotFound, StateFailed:
	default:
		return 0, fmt.Errorf("store: requeue: state %q: must be %s, %s or %s", state, StateDone, StateNotFound, StateFailed)
	}
	now := s.now()
	if before.IsZero() || before.After(now) {
		before = now.Add(time.Nanosecond)
	}
	res, err := s.exec(ctx, requeueSQL, dbTime(now), state, kind, dbTime(before))
	if err != nil {
		return 0, fmt.Errorf("store: requeue: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: requeue: %w", err)
	}
	return n, nil
}

// QueueCount is the number of items of one kind in one state.
type QueueCount struct {
	Kind  string
	State string
	Count int64
}

// QueueStats describes the queue.
type QueueStats struct {
	Counts []QueueCount // by kind, then state
	// OldestOpen is when the oldest unfinished item was enqueued; zero
	// when every item is finished.
	OldestOpen time.Time
	// OldestOpenAge is how long it has waited.
	OldestOpenAge time.Duration
	Pause         PauseState
}

// Count sums the items of kind in state; empty strings match any.
func (q QueueStats) Count(kind, state string) int64 {
	var n int64
	for _, c := range q.Counts {
		if (kind == "" || c.Kind == kind) && (state == "" || c.State == state) {
			n += c.Count
		}
	}
	return n
}

// Open is the number of unfinished items.
func (q QueueStats) Open() int64 {
	return q.Count("", StateQueued) + q.Count("", StatePending) + q.Count("", StateRetry) + q.Count("", StateLeased)
}

const queueStatsSQL = `SELECT kind, state, COUNT(*), MIN(created_at) FROM work_items GROUP BY kind, state ORDER BY kind, state`

// Stats counts the items by kind and state.
func (s *Store) Stats(ctx context.Context) (QueueStats, error) {
	var st QueueStats
	err := func() error {
		rows, err := s.db.QueryContext(ctx, queueStatsSQL)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c      QueueCount
				oldest int64
			)
			if err := rows.Scan(&c.Kind, &c.State, &c.Count, &oldest); err != nil {
				return err
			}
			st.Counts = append(st.Counts, c)
			switch c.State {
			case StateQueued, StatePending, StateRetry, StateLeased:
				if t := goTime(oldest); st.OldestOpen.IsZero() || t.Before(st.OldestOpen) {
					st.OldestOpen = t
				}
			}
		}
		return rows.Err()
	}()
	if err != nil {
		return QueueStats{}, fmt.Errorf("store: queue stats: %w", err)
	}
	if !st.OldestOpen.IsZero() {
		st.OldestOpenAge = max(s.now().Sub(st.OldestOpen), 0)
	}
	if st.Pause, err = s.Paused(ctx); err != nil {
		return QueueStats{}, err
	}
	return st, nil
}

const releaseSQL = `UPDATE work_items SET state = 'queued', next_attempt_at = $1, lease_owner = NULL, lease_until = NULL, updated_at = $1
WHERE state = 'leased' AND substr(lease_owner, 1, $3) = $2`

// ReleaseLeases hands back, at once and without counting an attempt,
// every item leased by an owner whose name starts with prefix: a process
// restarting under the same name calls it for the leases its previous
// incarnation held when it died, instead of waiting for them to expire.
func (s *Store) ReleaseLeases(ctx context.Context, prefix string) (int64, error) {
	if prefix == "" {
		return 0, errors.New("store: release leases: empty owner prefix")
	}
	res, err := s.exec(ctx, releaseSQL, dbTime(s.now()), prefix, len(prefix))
	if err != nil {
		return 0, fmt.Errorf("store: release leases: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: release leases: %w", err)
	}
	return n, nil
}
