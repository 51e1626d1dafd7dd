package carbonblack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// Queue item kinds of the Carbon Black front.
const (
	KindBinary = "cb.binary" // look the binary's hash up (quick scan)
	KindDeep   = "cb.deep"   // download the binary from Cb and upload it (deep scan)
)

// Queue priorities: binaries that appear while the connector runs go
// before the backlog found on the first walk.
const (
	priorityBackfill = 0
	priorityLive     = 10
)

const collectorCursor = "cb.collector"

// DefaultOverlap is how far behind its mark the live poller looks again:
// a binary may become searchable after later-stamped ones were seen
// (Solr commit lag, clustered servers' minions). Re-queueing what was
// already queued is a no-op.
const DefaultOverlap = 10 * time.Minute

// binarySearcher is the part of the Cb client the collector uses.
type binarySearcher interface {
	SearchBinaries(ctx context.Context, query string, start, rows int) (*SearchPage, int, error)
}

// collectorStore is the part of the store the collector uses.
type collectorStore interface {
	EnqueueMany(ctx context.Context, items []store.NewItem) (int, error)
	GetCursor(ctx context.Context, name string) (string, bool, error)
	SetCursor(ctx context.Context, name, value string) error
}

// CollectorConfig tunes the Collector.
type CollectorConfig struct {
	FeedName      string        // the exclusion -alliance_score_<FeedName>:*
	FilterQuery   string        // binary_filter_query, appended as the original did
	MaxBinarySize int64         // orig_mod_len:[1 TO MaxBinarySize]
	PageSize      int           // rows per search (the simulator and real servers cap at 1000)
	Sleep         time.Duration // between two live polls
	BackfillSleep time.Duration // between pages while walking the backlog
	ErrorSleep    time.Duration // after a failed search (default 30 s)
	Overlap       time.Duration // look-back of the live poller (default DefaultOverlap)
	Now           func() time.Time
}

// Collector queues Carbon Black's binaries for scanning with two walkers
// that share nothing but the queue: a live poller that, every Sleep,
// asks for the binaries added since its mark minus Overlap (so binaries
// committed late are still found), and a backfill that walks the history
// from the oldest binary up to where the live poller started, one page
// every BackfillSleep. A new binary is therefore queued within one Sleep
// however long the backlog. Both save their position after every page;
// a restart resumes them. Each page re-queries from the walker's mark
// instead of advancing an offset, so binaries that leave the result set
// during a walk (tagged by a feed sync) shift nothing.
type Collector struct {
	cb  binarySearcher
	st  collectorStore
	cfg CollectorConfig
	log *slog.Logger
	// OnQueued is called after new binaries were queued.
	OnQueued func()

	mu     sync.Mutex
	pos    position
	loaded bool
}

// NewCollector returns a collector.
func NewCollector(cb binarySearcher, st collectorStore, cfg CollectorConfig, log *slog.Logger) *Collector {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.ErrorSleep <= 0 {
		cfg.ErrorSleep = 30 * time.Second
	}
	if cfg.FeedName == "" {
		cfg.FeedName = FeedName
	}
	if cfg.Overlap <= 0 {
		cfg.Overlap = DefaultOverlap
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Collector{cb: cb, st: st, cfg: cfg, log: log}
}

// position is the collector's persisted cursor.
type position struct {
	Version int `json:"v"`
	// LiveFrom is where the live poller started: the backfill walks up
	// to it, the live poller from it.
	LiveFrom time.Time `json:"live_from"`
	// LiveMark is the newest server_added_timestamp the live poller saw.
	LiveMark time.Time `json:"live_mark"`
	// BackfillMark is the second the backfill has walked to.
	BackfillMark time.Time `json:"backfill_mark,omitzero"`
	BackfillDone bool      `json:"backfill_done"`

	// The fields of version 1 (one walker), read to carry on from them.
	Mark     time.Time `json:"mark,omitzero"`
	CaughtUp bool      `json:"caught_up,omitempty"`
}

// ResetPosition is the cursor that makes the collector walk again from
// since (zero: from the oldest binary), the live poller starting at now.
// Binaries already looked at are not looked at again (queueing is
// idempotent; `requeue` does that).
func ResetPosition(since, now time.Time) string {
	p := position{Version: 2, LiveFrom: now.UTC().Truncate(time.Second), LiveMark: now.UTC().Truncate(time.Second),
		BackfillMark: since.UTC().Truncate(time.Second)}
	b, _ := json.Marshal(p)
	return string(b)
}

// ResetCursor stores ResetPosition(since, now) as the collector's
// position; a running collector keeps its own until it restarts.
func ResetCursor(ctx context.Context, st collectorStore, since, now time.Time) error {
	if err := st.SetCursor(ctx, collectorCursor, ResetPosition(since, now)); err != nil {
		return fmt.Errorf("carbonblack: reset collector: %w", err)
	}
	return nil
}

// Query is the binary search for server_added_timestamp in [from, to]
// (zero: open). Like the original's, it is the range, the exclusion of
// binaries this feed tagged, the size filter and binary_filter_query
// appended as it is written (no parentheses: a purely negative filter in
// parentheses matches nothing in Solr, and a filter with a top-level OR
// binds as it did in the original).
func (c *Collector) Query(from, to time.Time) string {
	bound := func(t time.Time) string {
		if t.IsZero() {
			return "*"
		}
		return FormatCbTime(t)
	}
	parts := []string{
		fmt.Sprintf("server_added_timestamp:[%s TO %s]", bound(from), bound(to)),
		fmt.Sprintf("-alliance_score_%s:*", strings.ToLower(c.cfg.FeedName)),
	}
	if c.cfg.MaxBinarySize > 0 {
		parts = append(parts, fmt.Sprintf("orig_mod_len:[1 TO %d]", c.cfg.MaxBinarySize))
	}
	if f := strings.TrimSpace(c.cfg.FilterQuery); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, " ")
}

// state loads the position once; the collector keeps it in memory after.
func (c *Collector) state(ctx context.Context) (position, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		return c.pos, nil
	}
	now := c.cfg.Now().UTC().Truncate(time.Second)
	p := position{Version: 2, LiveFrom: now, LiveMark: now}
	v, ok, err := c.st.GetCursor(ctx, collectorCursor)
	if err != nil {
		return position{}, err
	}
	if ok {
		var old position
		switch err := json.Unmarshal([]byte(v), &old); {
		case err != nil:
			// A damaged cursor costs a re-walk (queueing is idempotent), not a stop.
			c.log.Warn("collector position unreadable; walking from the start", "error", err)
		case old.Version >= 2:
			p = old
		case old.CaughtUp: // version 1, caught up: live from its mark
			p.LiveFrom, p.LiveMark, p.BackfillDone = old.Mark, old.Mark, true
		default: // version 1 in its backlog walk
			p.BackfillMark = old.Mark
		}
	}
	c.pos, c.loaded = p, true
	return p, nil
}

func (c *Collector) update(ctx context.Context, f func(p *position)) error {
	c.mu.Lock()
	f(&c.pos)
	b, err := json.Marshal(c.pos)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.st.SetCursor(ctx, collectorCursor, string(b)); err != nil {
		return fmt.Errorf("carbonblack: collector: save position: %w", err)
	}
	return nil
}

// Run polls until ctx ends: the live poller and, until it has finished,
// the backfill. Search failures are logged and retried; they never stop
// the collector.
func (c *Collector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { c.loop(ctx, "live", c.LivePass, c.cfg.Sleep) })
	wg.Go(func() {
		c.loop(ctx, "backfill", func(ctx context.Context) (int, error) {
			n, err := c.Backfill(ctx)
			if err == nil {
				if p, _ := c.state(ctx); p.BackfillDone {
					return n, errBackfillDone
				}
			}
			return n, err
		}, c.cfg.Sleep)
	})
	wg.Wait()
	return nil
}

var errBackfillDone = errors.New("backfill done")

func (c *Collector) loop(ctx context.Context, name string, pass func(context.Context) (int, error), sleep time.Duration) {
	for {
		n, err := pass(ctx)
		if n > 0 {
			c.log.Info("binaries queued", "count", n, "walker", name)
		}
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errBackfillDone):
			c.log.Info("backfill finished: every binary Carbon Black had before the start is queued")
			return
		case err != nil:
			c.log.Error("binary collection failed; retrying", "walker", name, "error", err, "retry_in", c.cfg.ErrorSleep)
			if retry.Sleep(ctx, c.cfg.ErrorSleep) != nil {
				return
			}
			continue
		}
		if retry.Sleep(ctx, sleep) != nil {
			return
		}
	}
}

// Pass walks what is left of the backfill, then makes one live pass; it
// returns how many binaries it queued (tests and admin use).
func (c *Collector) Pass(ctx context.Context) (int, error) {
	n, err := c.Backfill(ctx)
	if err != nil {
		return n, err
	}
	m, err := c.LivePass(ctx)
	return n + m, err
}

// LivePass queues the binaries added since the live mark minus Overlap.
func (c *Collector) LivePass(ctx context.Context) (int, error) {
	p, err := c.state(ctx)
	if err != nil {
		return 0, fmt.Errorf("carbonblack: collector: %w", err)
	}
	from := p.LiveMark.Add(-c.cfg.Overlap)
	return c.walk(ctx, from, time.Time{}, priorityLive, 0, func(mark time.Time, _ bool) func(*position) {
		return func(p *position) {
			if mark.After(p.LiveMark) {
				p.LiveMark = mark
			}
		}
	})
}

// Backfill walks the history from its mark up to LiveFrom, one page
// every BackfillSleep, until it is done or ctx ends.
func (c *Collector) Backfill(ctx context.Context) (int, error) {
	p, err := c.state(ctx)
	if err != nil {
		return 0, fmt.Errorf("carbonblack: collector: %w", err)
	}
	if p.BackfillDone {
		return 0, nil
	}
	return c.walk(ctx, p.BackfillMark, p.LiveFrom, priorityBackfill, c.cfg.BackfillSleep, func(mark time.Time, done bool) func(*position) {
		return func(p *position) {
			if mark.After(p.BackfillMark) {
				p.BackfillMark = mark
			}
			p.BackfillDone = p.BackfillDone || done
		}
	})
}

// walk queues every binary in [from, to], page by page, saving the
// position (the newest second seen) after each.
func (c *Collector) walk(ctx context.Context, from, to time.Time, prio int, pause time.Duration,
	advance func(mark time.Time, done bool) func(*position)) (int, error) {
	queued, offset := 0, 0
	cur := from.Truncate(time.Second)
	for {
		page, skipped, err := c.cb.SearchBinaries(ctx, c.Query(cur, to), offset, c.cfg.PageSize)
		if err != nil {
			return queued, fmt.Errorf("carbonblack: collector: %w", err)
		}
		if skipped > 0 {
			c.log.Warn("binaries without a usable md5 or timestamp skipped", "count", skipped)
		}
		items := make([]store.NewItem, 0, len(page.Results))
		last := cur
		for _, b := range page.Results {
			payload, _ := json.Marshal(binaryPayload{MD5: b.MD5, Size: b.OrigModLen, Name: b.OriginalFilename, Added: b.ServerAddedTimestamp,
				Signed: strings.EqualFold(b.DigsigResult, "Signed")})
			items = append(items, store.NewItem{Kind: KindBinary, Key: b.MD5, Payload: payload, Priority: prio})
			if sec := b.ServerAddedTimestamp.Truncate(time.Second); sec.After(last) {
				last = sec
			}
		}
		if len(items) > 0 {
			n, err := c.st.EnqueueMany(ctx, items)
			if err != nil {
				return queued, fmt.Errorf("carbonblack: collector: queue binaries: %w", err)
			}
			queued += n
			if n > 0 && c.OnQueued != nil {
				c.OnQueued()
			}
		}
		full := len(page.Results)+skipped >= c.cfg.PageSize
		if err := c.update(ctx, advance(last, !full)); err != nil {
			return queued, err
		}
		if !full {
			return queued, nil
		}
		if last.After(cur) {
			// Re-query from the newest second: its binaries come again
			// (queueing them is a no-op), the rest shift nothing.
			cur, offset = last, 0
		} else {
			// A whole page in one second: step over it.
			offset += len(page.Results) + skipped
		}
		if pause > 0 && retry.Sleep(ctx, pause) != nil {
			return queued, nil
		}
	}
}

// binaryPayload is a cb.binary or cb.deep queue item's payload.
type binaryPayload struct {
	MD5    string    `json:"md5"`
	Size   int64     `json:"size,omitempty"`
	Name   string    `json:"name,omitempty"`
	Added  time.Time `json:"added,omitzero"`
	Signed bool      `json:"signed,omitempty"` // Cb's digsig_result says "Signed"

	// Submission is a VirusTotal analysis to collect (a rescan or an upload).
	Submission *engine.Submission `json:"submission,omitempty"`

	// Analysis and Since are how versions before the engine's submissions
	// recorded a public analysis; upgrade turns them into a Submission.
	Analysis string    `json:"analysis,omitempty"`
	Since    time.Time `json:"since,omitzero"`
}

// upgrade reads an item written by an earlier version.
func (p *binaryPayload) upgrade() {
	if p.Submission == nil && p.Analysis != "" {
		p.Submission = &engine.Submission{Analysis: p.Analysis, Mode: engine.Public, Kind: vt.KindFile,
			Subject: strings.ToLower(p.MD5), Since: p.Since}
	}
	p.Analysis, p.Since = "", time.Time{}
}
