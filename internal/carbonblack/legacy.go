package carbonblack

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the original's database is SQLite

	"github.com/vtconnector/vtconnector/internal/store"
)

// legacyImportCursor is where the report of the last import of the
// original connector's database is kept, so that a restart does not redo it.
const legacyImportCursor = "cb.legacy_import"

// ErrNoLegacyDatabase is returned by ImportLegacy when the file does not exist.
var ErrNoLegacyDatabase = errors.New("carbonblack: the original connector's database does not exist")

// Reasons a row of the original's database is skipped, as counted in
// LegacyReport.Skipped.
const (
	SkipNotMD5     = "md5sum is not an MD5"
	SkipState      = "state is not one the original wrote"
	SkipOurs       = "already analysed by vtconnector"
	SkipImported   = "already imported"
	SkipKnown      = "already in vtconnector's queue"
	SkipDuplicate  = "md5sum seen twice"
	SkipUnreadTime = "last_modified unreadable (queued for a lookup instead)"
)

// LegacyReport says what an import of the original's database did.
type LegacyReport struct {
	Source string    `json:"source"`
	At     time.Time `json:"at"` // when the import ran
	// SchemaVersion is feed_data.database_version (0 when absent); below 7
	// the original wrote local times, read here in this host's time zone.
	SchemaVersion int  `json:"schema_version"`
	TitleColumn   bool `json:"title_column"` // binary_data has title/description (cbint 0.9.3)
	Read          int  `json:"read"`         // rows of binary_data read
	// Published are analysed rows with a score above 0, now reports of
	// the feed with the original's score, title, link and timestamp.
	Published int `json:"published"`
	// Analysed are analysed rows with score 0: not published, not
	// looked up again before days_rescan.
	Analysed int `json:"analysed"`
	// Queued are pending, in-flight and failed rows, queued for a lookup.
	Queued  int            `json:"queued"`
	Skipped map[string]int `json:"skipped,omitempty"` // why -> rows
}

// SkippedTotal is the number of rows skipped for any reason.
func (r LegacyReport) SkippedTotal() int {
	n := 0
	for _, c := range r.Skipped {
		n += c
	}
	return n
}

// SkippedText lists the skip reasons with their counts, "" when none.
func (r LegacyReport) SkippedText() string {
	var parts []string
	for _, why := range slices.Sorted(func(yield func(string) bool) {
		for k := range r.Skipped {
			if !yield(k) {
				return
			}
		}
	}) {
		parts = append(parts, fmt.Sprintf("%d %s", r.Skipped[why], why))
	}
	return strings.Join(parts, "; ")
}

// Summary is the report in one line, for the log and the status page.
func (r LegacyReport) Summary() string {
	s := fmt.Sprintf("imported %s (schema version %d) at %s: %d rows read, %d published, %d analysed clean, %d queued, %d skipped",
		r.Source, r.SchemaVersion, r.At.UTC().Format(time.RFC3339), r.Read, r.Published, r.Analysed, r.Queued, r.SkippedTotal())
	if t := r.SkippedText(); t != "" {
		s += " (" + t + ")"
	}
	return s
}

// legacyStore is the part of the store the import uses.
type legacyStore interface {
	GetResult(ctx context.Context, ns, key string) (store.Result, bool, error)
	PutResult(ctx context.Context, ns, key string, value []byte) (bool, error)
	EnqueueMany(ctx context.Context, items []store.NewItem) (int, error)
	GetCursor(ctx context.Context, name string) (string, bool, error)
	SetCursor(ctx context.Context, name, value string) error
}

// LastLegacyImport returns the report of the last import recorded in the
// store; false when there was none.
func LastLegacyImport(ctx context.Context, st legacyStore) (LegacyReport, bool, error) {
	v, ok, err := st.GetCursor(ctx, legacyImportCursor)
	if err != nil || !ok {
		return LegacyReport{}, false, err
	}
	var r LegacyReport
	if err := json.Unmarshal([]byte(v), &r); err != nil {
		return LegacyReport{}, false, fmt.Errorf("carbonblack: last import record unreadable: %w", err)
	}
	return r, true, nil
}

// legacyRow is one binary_data row, its timestamps as the original wrote them.
type legacyRow struct {
	md5, lastModified, shortResult, detailedResult, title, link string
	state, score                                                sql.NullInt64
}

// ImportLegacy carries the original connector's state over from its
// SQLite database at path (read only, never changed): analysed rows
// (state 100) become verdicts (those with a score above 0 are published
// with the original's score, title or short result, link and timestamp)
// whose queue item is recorded as done at the row's last_modified, so
// that days_rescan counts from there; pending (0), in-flight (50) and
// failed (-100) rows are queued for a lookup. A verdict of vtconnector's
// own is never replaced. Running it again changes nothing. The report is
// recorded in the store and returned.
func ImportLegacy(ctx context.Context, st legacyStore, path string, log *slog.Logger) (LegacyReport, error) {
	rep := LegacyReport{Source: path, At: time.Now().UTC(), Skipped: map[string]int{}}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("%w: %s", ErrNoLegacyDatabase, path)
	} else if err != nil {
		return rep, fmt.Errorf("carbonblack: import %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return rep, fmt.Errorf("carbonblack: import %s: %w", path, err)
	}
	defer db.Close()
	rows, version, hasTitle, err := readLegacy(ctx, db)
	if err != nil {
		return rep, fmt.Errorf("carbonblack: import %s: %w", path, err)
	}
	rep.SchemaVersion, rep.TitleColumn = version, hasTitle
	loc := time.UTC
	if version < 7 {
		// Before version 7 the original wrote local times (its own
		// migration to 7 shifted them by the UTC offset).
		loc = time.Local
	}
	var done, queued []store.NewItem
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		rep.Read++
		md5 := strings.ToUpper(strings.TrimSpace(r.md5))
		switch {
		case !isMD5(md5):
			rep.Skipped[SkipNotMD5]++
			continue
		case seen[md5]:
			rep.Skipped[SkipDuplicate]++
			continue
		}
		seen[md5] = true
		payload, _ := json.Marshal(binaryPayload{MD5: md5})
		lookup := store.NewItem{Kind: KindBinary, Key: md5, Payload: payload, Priority: priorityBackfill}
		switch r.state.Int64 {
		case 0, 50, -100:
			queued = append(queued, lookup)
			continue
		case 100:
		default:
			rep.Skipped[SkipState]++
			continue
		}
		at, ok := parseLegacyTime(r.lastModified, loc)
		if !ok {
			rep.Skipped[SkipUnreadTime]++
			queued = append(queued, lookup)
			continue
		}
		if old, ok, err := st.GetResult(ctx, ResultsNS, md5); err != nil {
			return rep, fmt.Errorf("carbonblack: import %s: %w", path, err)
		} else if ok {
			if v, err := decodeVerdict(old); err == nil && v.Imported == nil {
				rep.Skipped[SkipOurs]++
				continue
			}
		}
		v := legacyVerdict(md5, r, at)
		b, err := json.Marshal(v)
		if err != nil {
			return rep, fmt.Errorf("carbonblack: import %s: %w", path, err)
		}
		changed, err := st.PutResult(ctx, ResultsNS, md5, b)
		if err != nil {
			return rep, fmt.Errorf("carbonblack: import %s: %w", path, err)
		}
		switch {
		case !changed:
			rep.Skipped[SkipImported]++
		case v.Score() > 0:
			rep.Published++
		default:
			rep.Analysed++
		}
		lookup.DoneAt = at
		done = append(done, lookup)
	}
	for i := 0; i < len(done); i += 500 {
		if _, err := st.EnqueueMany(ctx, done[i:min(i+500, len(done))]); err != nil {
			return rep, fmt.Errorf("carbonblack: import %s: %w", path, err)
		}
	}
	for i := 0; i < len(queued); i += 500 {
		batch := queued[i:min(i+500, len(queued))]
		n, err := st.EnqueueMany(ctx, batch)
		if err != nil {
			return rep, fmt.Errorf("carbonblack: import %s: %w", path, err)
		}
		rep.Queued += n
		if len(batch) > n {
			rep.Skipped[SkipKnown] += len(batch) - n
		}
	}
	if len(rep.Skipped) == 0 {
		rep.Skipped = nil
	}
	b, _ := json.Marshal(rep)
	if err := st.SetCursor(ctx, legacyImportCursor, string(b)); err != nil {
		return rep, fmt.Errorf("carbonblack: import %s: record: %w", path, err)
	}
	if log != nil {
		log.Info("original connector's database imported", "source", path, "schema_version", version,
			"rows_read", rep.Read, "published", rep.Published, "analysed", rep.Analysed, "queued", rep.Queued,
			"skipped", rep.SkippedTotal(), "skipped_why", rep.SkippedText())
	}
	return rep, nil
}

// readLegacy reads every binary_data row, whatever the schema version:
// columns added by later versions (link, title) are read when present.
func readLegacy(ctx context.Context, db *sql.DB) ([]legacyRow, int, bool, error) {
	cols := map[string]bool{}
	trows, err := db.QueryContext(ctx, `SELECT name FROM pragma_table_info('binary_data')`)
	if err != nil {
		return nil, 0, false, fmt.Errorf("read schema (is it the original connector's sqlite.db?): %w", err)
	}
	for trows.Next() {
		var n string
		if err := trows.Scan(&n); err != nil {
			trows.Close()
			return nil, 0, false, err
		}
		cols[strings.ToLower(n)] = true
	}
	trows.Close()
	if err := trows.Err(); err != nil {
		return nil, 0, false, err
	}
	for _, c := range []string{"md5sum", "state", "last_modified", "score", "short_result"} {
		if !cols[c] {
			return nil, 0, false, fmt.Errorf("no column %s in table binary_data: not the original connector's database", c)
		}
	}
	version := 0
	if err := db.QueryRowContext(ctx, `SELECT database_version FROM feed_data LIMIT 1`).Scan(&version); err != nil {
		// feed_data and its row exist in every version the original
		// shipped; without them the timestamps are taken as UTC.
		version = 7
	}
	opt := func(c string) string {
		if cols[c] {
			return "CAST(" + c + " AS TEXT)"
		}
		return "NULL"
	}
	// Timestamps are read as the text the original wrote, not as the
	// driver would interpret a DATETIME column.
	q := `SELECT CAST(md5sum AS TEXT), state, CAST(last_modified AS TEXT), score, CAST(short_result AS TEXT), ` +
		opt("detailed_result") + `, ` + opt("title") + `, ` + opt("link") + ` FROM binary_data ORDER BY rowid`
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, 0, false, fmt.Errorf("read binary_data: %w", err)
	}
	defer rows.Close()
	var out []legacyRow
	for rows.Next() {
		var (
			r                               legacyRow
			md5, lm, short, detailed, title sql.NullString
			link                            sql.NullString
		)
		if err := rows.Scan(&md5, &r.state, &lm, &r.score, &short, &detailed, &title, &link); err != nil {
			return nil, 0, false, fmt.Errorf("read binary_data: %w", err)
		}
		r.md5, r.lastModified, r.shortResult, r.detailedResult, r.title, r.link = md5.String, lm.String, short.String, detailed.String, title.String, link.String
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("read binary_data: %w", err)
	}
	return out, version, cols["title"], nil
}

// parseLegacyTime reads a timestamp as Python's sqlite3 adapter wrote a
// naive datetime: "2017-10-18 12:34:56.123456", or without the fraction
// when it is zero (a "T" separator is accepted too).
func parseLegacyTime(s string, loc *time.Location) (time.Time, bool) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// shortResultCounts reads "[12 / 68] VirusTotal report for <md5>", the
// original's short_result.
var shortResultCounts = regexp.MustCompile(`^\s*\[\s*(\d+)\s*/\s*(\d+)\s*\]`)

// legacyVerdict turns an analysed row into a verdict.
func legacyVerdict(md5 string, r legacyRow, at time.Time) Verdict {
	title := strings.TrimSpace(r.title)
	if title == "" {
		title = strings.TrimSpace(r.shortResult) // cbint 0.9.2 published short_result as the title
	}
	v := Verdict{MD5: md5, Found: true, Link: strings.TrimSpace(r.link),
		Imported: &ImportedVerdict{Score: int(r.score.Int64), Title: title, At: at}}
	if m := shortResultCounts.FindStringSubmatch(r.shortResult); m != nil {
		v.Positives, _ = strconv.Atoi(m[1])
		v.Total, _ = strconv.Atoi(m[2])
	}
	// detailed_result: "VirusTotal Report:" then one "<engine> :\t<result>" per detection.
	for _, line := range strings.Split(r.detailedResult, "\n") {
		engine, result, ok := strings.Cut(line, ":\t")
		if engine = strings.TrimSpace(engine); !ok || engine == "" {
			continue
		}
		v.Detections = append(v.Detections, Detection{Engine: engine, Result: strings.TrimSpace(result)})
	}
	slices.SortFunc(v.Detections, func(a, b Detection) int { return strings.Compare(a.Engine, b.Engine) })
	return v
}
