package carbonblack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
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
	FilterQuery   string        // binary_filter_query, ANDed
	MaxBinarySize int64         // orig_mod_len:[1 TO MaxBinarySize]
	PageSize      int           // rows per search (the simulator and real servers cap at 1000)
	Sleep         time.Duration // between passes once caught up
	BackfillSleep time.Duration // between pages while walking the backlog
	ErrorSleep    time.Duration // after a failed search (default 30 s)
}

// Collector walks Carbon Black's binaries in the order the server added
// them and queues each new one for scanning. Its position (a high-water
// mark on server_added_timestamp plus the MD5s already seen in that
// second) is saved after every page, so a restart resumes where it
// stopped and nothing is walked twice. Each page re-queries from the
// high-water mark instead of advancing an offset, so binaries that leave
// the result set during a walk (tagged by a feed sync) shift nothing.
type Collector struct {
	cb  binarySearcher
	st  collectorStore
	cfg CollectorConfig
	log *slog.Logger
	// OnQueued is called after new binaries were queued.
	OnQueued func()
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
	return &Collector{cb: cb, st: st, cfg: cfg, log: log}
}

// position is the collector's persisted cursor.
type position struct {
	// Mark is the server_added_timestamp of the newest binary seen,
	// truncated to the second (the precision of range queries).
	Mark time.Time `json:"mark"`
	// Seen are the MD5s already queued whose timestamp falls in Mark's
	// second; the next query starts at that second and skips them.
	Seen     []string `json:"seen"`
	CaughtUp bool     `json:"caught_up"` // the backlog walk has finished once
}

// Query is the binary search the collector sends for the position.
func (c *Collector) Query(p position) string {
	lower := "*"
	if !p.Mark.IsZero() {
		lower = FormatCbTime(p.Mark)
	}
	parts := []string{
		fmt.Sprintf("server_added_timestamp:[%s TO *]", lower),
		fmt.Sprintf("-alliance_score_%s:*", strings.ToLower(c.cfg.FeedName)),
	}
	if c.cfg.MaxBinarySize > 0 {
		parts = append(parts, fmt.Sprintf("orig_mod_len:[1 TO %d]", c.cfg.MaxBinarySize))
	}
	if f := strings.TrimSpace(c.cfg.FilterQuery); f != "" {
		parts = append(parts, "("+f+")")
	}
	return strings.Join(parts, " ")
}

func (c *Collector) load(ctx context.Context) (position, error) {
	var p position
	v, ok, err := c.st.GetCursor(ctx, collectorCursor)
	if err != nil || !ok {
		return p, err
	}
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		// A damaged cursor costs a re-walk (queueing is idempotent), not a stop.
		c.log.Warn("collector position unreadable; walking from the start", "error", err)
		return position{}, nil
	}
	return p, nil
}

func (c *Collector) save(ctx context.Context, p position) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return c.st.SetCursor(ctx, collectorCursor, string(b))
}

// Run polls until ctx ends. Search failures are logged and retried; they
// never stop the collector.
func (c *Collector) Run(ctx context.Context) error {
	for {
		n, err := c.Pass(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			c.log.Error("binary collection failed; retrying", "error", err, "retry_in", c.cfg.ErrorSleep)
			if retry.Sleep(ctx, c.cfg.ErrorSleep) != nil {
				return nil
			}
			continue
		case n > 0:
			c.log.Info("binaries queued", "count", n)
		}
		if retry.Sleep(ctx, c.cfg.Sleep) != nil {
			return nil
		}
	}
}

// Pass walks from the saved position to the newest binary, queueing what
// it has not seen, and returns how many binaries it queued.
func (c *Collector) Pass(ctx context.Context) (int, error) {
	p, err := c.load(ctx)
	if err != nil {
		return 0, fmt.Errorf("carbonblack: collector: %w", err)
	}
	queued, offset := 0, 0
	for {
		page, skipped, err := c.cb.SearchBinaries(ctx, c.Query(p), offset, c.cfg.PageSize)
		if err != nil {
			return queued, fmt.Errorf("carbonblack: collector: %w", err)
		}
		if skipped > 0 {
			c.log.Warn("binaries without a usable md5 or timestamp skipped", "count", skipped)
		}
		seen := make(map[string]bool, len(p.Seen))
		for _, m := range p.Seen {
			seen[m] = true
		}
		var items []store.NewItem
		next := p
		for _, b := range page.Results {
			sec := b.ServerAddedTimestamp.Truncate(time.Second)
			if sec.Before(p.Mark) || sec.Equal(p.Mark) && seen[b.MD5] {
				continue
			}
			prio := priorityBackfill
			if p.CaughtUp {
				prio = priorityLive
			}
			payload, _ := json.Marshal(binaryPayload{MD5: b.MD5, Size: b.OrigModLen, Name: b.OriginalFilename, Added: b.ServerAddedTimestamp,
				Signed: strings.EqualFold(b.DigsigResult, "Signed")})
			items = append(items, store.NewItem{Kind: KindBinary, Key: b.MD5, Payload: payload, Priority: prio})
			switch {
			case sec.After(next.Mark):
				next.Mark, next.Seen = sec, []string{b.MD5}
			case sec.Equal(next.Mark):
				next.Seen = append(next.Seen, b.MD5)
			}
			seen[b.MD5] = true
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
		if !full {
			next.CaughtUp = true
		}
		if err := c.save(ctx, next); err != nil {
			return queued, fmt.Errorf("carbonblack: collector: save position: %w", err)
		}
		if !full {
			return queued, nil
		}
		if len(items) == 0 {
			// A whole page of binaries already seen in the mark's second:
			// step over them with the offset.
			offset += len(page.Results) + skipped
		} else {
			offset = 0
		}
		p = next
		if !p.CaughtUp && c.cfg.BackfillSleep > 0 {
			if err := retry.Sleep(ctx, c.cfg.BackfillSleep); err != nil {
				return queued, nil
			}
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
