// Package store owns vtconnector's durable state, for every front: the
// cache of VirusTotal objects, the work queue, cursors and the shared
// quota ledger. Everything a process would otherwise keep in memory and
// lose on a crash lives here.
//
// One database/sql code path serves two backends: SQLite (modernc.org/sqlite,
// the default, one file, no server) and PostgreSQL (pgx's stdlib driver,
// for several instances sharing one queue and one key's budget). The SQL
// is one dialect where possible ($n placeholders, INSERT … ON CONFLICT,
// RETURNING); the few places that differ (row locks) are switched per
// dialect. Times are stored as Unix nanoseconds (UTC) in 64-bit integer
// columns in both, so comparisons are exact and identical everywhere.
//
// Schema changes are versioned migrations embedded per dialect under
// migrations/{sqlite,postgres}/NNNN_name.sql, applied by Open under a lock
// so that instances starting together do not race, and recorded in
// schema_migrations. A database newer than the binary is refused.
//
// Copy moves a whole store between databases of either dialect (SQLite to
// PostgreSQL when one instance becomes several, and back): one snapshot
// read, batched inserts in one target transaction, counts checked.
//
// Work is never lost on a crash: an item leaves the queue only through
// Complete, in one transaction; a claimed item whose worker died comes
// back when its lease expires. Processing is therefore at-least-once,
// completion exactly-once (see Complete).
//
// What the Carbon Black connector this replaces got wrong, and what this
// package does instead: outcomes are explicit, each with its next step
// (pending analyses and rate limits wait without spending attempts, transient
// errors back off without a retry cap, an auth error pauses the whole queue
// instead of burning every item's retries); every selection honours
// next_attempt_at; leases replace the "checked out" state that only a
// restart reset; cursors have a unique key; the queue has indexes for its
// selections; migrations are numbered and complete.
//
// Durability: SQLite runs in WAL mode with synchronous=FULL, so a committed
// transaction survives a process crash and a power cut (the DSN can trade
// that for speed with _synchronous=NORMAL: a power cut may then lose the
// last transactions, a process crash still loses nothing). PostgreSQL's
// durability is the server's (synchronous_commit). SQLite runs one writer
// at a time and each commit waits for the disk, so a process's SQLite
// writes go through one goroutine that commits together the writes that
// queued meanwhile (group commit, group.go): each keeps the meaning of a
// transaction of its own (a savepoint; reported done only once
// committed). SQLite connections keep their prepared statements
// (stmtcache.go).
//
// The store must not import the fronts (carbonblack, opencti, lookup) nor
// cli; it knows the engine only for the Cache and Ledger contracts it
// implements.
package store
