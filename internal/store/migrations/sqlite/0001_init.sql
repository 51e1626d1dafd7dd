-- vtconnector store, SQLite. Times are Unix nanoseconds (UTC), 0 = unset.

-- Cached VirusTotal answers: the object's JSON ("data" member, verbatim)
-- when found, NULL data when VirusTotal did not know the object.
CREATE TABLE vt_objects (
	kind       TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	found      BOOLEAN NOT NULL,
	data       TEXT,
	fetched_at INTEGER NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX vt_objects_fetched_at ON vt_objects (fetched_at);

-- The durable work queue. An item is open while queued, pending (waiting
-- for a VirusTotal analysis), retry (backing off) or leased; it is
-- finished when done, not_found or failed.
CREATE TABLE work_items (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	kind            TEXT    NOT NULL,
	key             TEXT    NOT NULL,
	payload         TEXT,
	result          TEXT,
	priority        INTEGER NOT NULL DEFAULT 0,
	state           TEXT    NOT NULL CHECK (state IN ('queued', 'pending', 'retry', 'leased', 'done', 'not_found', 'failed')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	lease_owner     TEXT,
	lease_until     INTEGER,
	last_error      TEXT,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	UNIQUE (kind, key)
);
-- Claim walks the open items in priority order.
CREATE INDEX work_items_open ON work_items (priority DESC, id)
	WHERE state IN ('queued', 'pending', 'retry', 'leased');
CREATE INDEX work_items_kind_state ON work_items (kind, state, created_at);

-- One row: whether the whole queue is paused (after an auth error).
CREATE TABLE queue_state (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	paused BOOLEAN NOT NULL DEFAULT FALSE,
	reason TEXT    NOT NULL DEFAULT '',
	since  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO queue_state (id) VALUES (1);

-- Named positions (collector high-water marks) and other small values.
CREATE TABLE cursors (
	name       TEXT    PRIMARY KEY,
	value      TEXT    NOT NULL,
	updated_at INTEGER NOT NULL
);

-- Quota ledger, per API key fingerprint: the pause, one row per request
-- allowed per minute (busy until one minute after its answer), and the day
-- and month counters with the start of their period.
CREATE TABLE quota_keys (
	key_id       TEXT    PRIMARY KEY,
	paused_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE quota_slots (
	key_id     TEXT    NOT NULL,
	slot       INTEGER NOT NULL,
	busy_until INTEGER NOT NULL DEFAULT 0,
	ticket     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (key_id, slot)
);
CREATE TABLE quota_counters (
	key_id TEXT    NOT NULL,
	period TEXT    NOT NULL CHECK (period IN ('day', 'month')),
	start  INTEGER NOT NULL,
	used   INTEGER NOT NULL,
	PRIMARY KEY (key_id, period)
);
