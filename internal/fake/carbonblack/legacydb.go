package carbonblack

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the original connector's database is SQLite
)

// LegacySchema is a schema version of the original connector's SQLite
// database (cbint's SqliteQueue), as it shipped.
type LegacySchema struct {
	Version int // feed_data.database_version
	// Title adds binary_data.title and .description (cbint 0.9.3, still
	// version 7: cbint added them without a version bump).
	Title bool
}

// LegacySchemas are the schemas the original shipped: version 2 (2015,
// before quick_scan_done), 5 (quick_scan_done, retry_count,
// provider_data), 6 (link), 7 (timestamps in UTC instead of local time)
// and 7 with title and description.
var LegacySchemas = []LegacySchema{{Version: 2}, {Version: 5}, {Version: 6}, {Version: 7}, {Version: 7, Title: true}}

// Name is e.g. "v7+title".
func (s LegacySchema) Name() string {
	n := fmt.Sprintf("v%d", s.Version)
	if s.Title {
		n += "+title"
	}
	return n
}

// LegacyRow is a binary_data row.
type LegacyRow struct {
	MD5          string // as Cb returned it: upper case
	State        int    // 0 pending, 50 in flight, 100 analysed, -100 failed
	Score        int
	ShortResult  string // "[12 / 68] VirusTotal report for <md5>", "Benign", or an error
	Detailed     string // "VirusTotal Report:\n<engine> :\t<result>..."
	Title        string // only with LegacySchema.Title
	Link         string // only from version 6
	LastModified time.Time
	RetryCount   int
}

// PythonTime formats t as Python 2's sqlite3 adapter stored a naive
// datetime: str(datetime), "2017-10-18 12:34:56.123456", the fraction
// left out when it is zero. Versions before 7 stored local time.
func PythonTime(t time.Time, s LegacySchema) string {
	if s.Version < 7 {
		t = t.Local()
	} else {
		t = t.UTC()
	}
	if t.Nanosecond()/1000 == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.") + fmt.Sprintf("%06d", t.Nanosecond()/1000)
}

// WriteLegacyDatabase creates the original connector's database at path
// in schema s, with rows written the way the original wrote them.
func WriteLegacyDatabase(ctx context.Context, path string, s LegacySchema, rows []LegacyRow) error {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	cols := []string{"md5sum VARCHAR(32) PRIMARY KEY NOT NULL", "last_modified DATETIME", "inserted_at DATETIME",
		"next_attempt_at DATETIME", "binary_available_since DATETIME"}
	if s.Version >= 3 {
		cols = append(cols, "quick_scan_done BOOLEAN", "retry_count INTEGER")
	}
	cols = append(cols, "short_result TEXT", "detailed_result TEXT")
	if s.Title {
		cols = append(cols, "title TEXT", "description TEXT")
	}
	cols = append(cols, "score INTEGER", "iocs TEXT")
	if s.Version >= 5 {
		cols = append(cols, "provider_data TEXT")
	}
	if s.Version >= 6 {
		cols = append(cols, "link TEXT")
	}
	cols = append(cols, "state INTEGER", "analysis_version INTEGER")
	meta := "database_version INTEGER, feed_version INTEGER, analysis_version INTEGER"
	if s.Version < 3 {
		meta = "full_name TEXT, short_name TEXT, tech_detail TEXT, big_icon TEXT, small_icon TEXT, " + meta
	}
	stmts := []string{
		"CREATE TABLE IF NOT EXISTS binary_data (\n  " + strings.Join(cols, ",\n  ") + "\n)",
		"CREATE TABLE IF NOT EXISTS feed_data (" + meta + ")",
		"CREATE TABLE IF NOT EXISTS kv_store (key TEXT, value TEXT)",
		fmt.Sprintf("INSERT INTO feed_data (database_version) VALUES (%d)", s.Version),
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("fake legacy db: %s: %w", q, err)
		}
	}
	for _, r := range rows {
		names := []string{"md5sum", "last_modified", "inserted_at", "next_attempt_at", "short_result", "detailed_result", "score", "state", "analysis_version"}
		ts := PythonTime(r.LastModified, s)
		args := []any{r.MD5, ts, ts, "", r.ShortResult, r.Detailed, r.Score, r.State, 1}
		if s.Version >= 3 {
			names = append(names, "quick_scan_done", "retry_count")
			args = append(args, 0, r.RetryCount)
		}
		if s.Title {
			names = append(names, "title", "description")
			args = append(args, r.Title, "")
		}
		if s.Version >= 6 {
			names = append(names, "link")
			args = append(args, r.Link)
		}
		q := "INSERT INTO binary_data (" + strings.Join(names, ", ") + ") VALUES (?" + strings.Repeat(", ?", len(names)-1) + ")"
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("fake legacy db: insert %s: %w", r.MD5, err)
		}
	}
	return nil
}
