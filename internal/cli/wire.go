package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vtconnector/vtconnector/internal/config"
	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/obs"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// engineSpec is what every command that talks to VirusTotal needs built:
// the store (or nothing, for a lookup kept in memory), the client, the
// quota scheduler, the observer and the engine over them.
type engineSpec struct {
	Front     string     // "carbonblack", "opencti" or "lookup": the status page's name
	Database  config.DSN // "" keeps cache and quota in memory (lookup without --db)
	DBSetting string     // the setting that named the database, for messages
	APIKey    config.Secret
	VTURL     string
	Timeout   time.Duration
	UserAgent string
	Limits    engine.Limits
	// Learn names the budgets the configuration left unset: they are
	// taken from VirusTotal's figures for the key.
	Learn    engine.Learn
	MaxAge   time.Duration
	Uploads  engine.UploadPolicy
	Analysis engine.AnalysisPolicy
	// Recent, when set, lists the front's recent verdicts for the status page.
	Recent func(st *store.Store) func(ctx context.Context, n int) ([]obs.Verdict, error)
	// Summaries: the front reads only objects' summaries (stats, hashes,
	// name, label), so lookups decode only those (vt.Client.Lean), and
	// the in-memory cache holds no JSON.
	Summaries bool
	// OneHashOnly: the front looks files up by one kind of hash only
	// (engine.Options.OneHashOnly).
	OneHashOnly bool
	Log         *slog.Logger
}

// engineParts are the built parts; Close releases them.
type engineParts struct {
	Store  *store.Store // nil when kept in memory
	Client *vt.Client
	Sched  *engine.Scheduler
	Engine *engine.Engine
	Obs    *obs.Observer
	Close  func()
}

// buildEngine builds, in order, the store, the client, the scheduler, the
// observer and the engine (which is given the observer at construction).
// A bad setting is a usageError naming it.
func buildEngine(ctx context.Context, e *env, s engineSpec) (*engineParts, error) {
	if err := s.Limits.Validate(); err != nil {
		return nil, usageError{err}
	}
	if err := s.Uploads.Validate(); err != nil {
		return nil, usageError{err}
	}
	client, err := vt.New(s.APIKey.Reveal(), vt.WithBaseURL(s.VTURL), vt.WithTimeout(s.Timeout),
		vt.WithHTTPClient(e.httpClient()), vt.WithUserAgent(s.UserAgent))
	if err != nil {
		return nil, usageError{err}
	}
	p := &engineParts{Client: client, Close: func() {}}
	var (
		cache  engine.Cache  = engine.NewMemCache()
		ledger engine.Ledger = engine.NewMemLedger()
		keyID                = engine.KeyID(s.APIKey.Reveal())
	)
	src := obs.Sources{Name: s.Front, Limits: s.Limits}
	if s.Database != "" {
		st, err := store.Open(ctx, s.Database.Reveal(), store.WithLogger(s.Log))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", s.DBSetting, s.Database, err)
		}
		p.Store, cache, ledger = st, st, st.Ledger(keyID)
		src.Quota = func(ctx context.Context, now time.Time) (engine.Usage, error) { return st.QuotaUsage(ctx, keyID, now) }
		src.Queue = st.Stats
		if s.Recent != nil {
			src.Recent = s.Recent(st)
		}
	} else if ml, ok := ledger.(*engine.MemLedger); ok {
		src.Quota = func(_ context.Context, now time.Time) (engine.Usage, error) { return ml.Usage(now), nil }
	}
	p.Sched = engine.NewScheduler(ledger, s.Limits, s.Timeout, s.Log)
	src.Waiting, src.Budget = p.Sched.Waiting, p.Sched.Budget
	p.Obs = obs.New(src, s.Log)
	var api engine.API = client
	if s.Summaries {
		api = client.Lean(s.Database != "") // a durable cache keeps the JSON
	}
	p.Engine = engine.New(api, cache, p.Sched, engine.Options{MaxAge: s.MaxAge, Log: s.Log, Events: p.Obs, Submit: client,
		Quotas: client, Learn: s.Learn, OneHashOnly: s.OneHashOnly,
		Uploads: s.Uploads, Analysis: s.Analysis})
	p.Close = func() {
		p.Sched.Close()
		if p.Store != nil {
			p.Store.Close()
		}
	}
	return p, nil
}

// learn is the set of budgets to learn from VirusTotal: those whose
// setting (per minute, per day, per month) was not given.
func learn(given func(string) bool, minute, day, month string) engine.Learn {
	var l engine.Learn
	for _, b := range []struct {
		key string
		bit engine.Learn
	}{{minute, engine.LearnPerMinute}, {day, engine.LearnPerDay}, {month, engine.LearnPerMonth}} {
		if !given(b.key) {
			l |= b.bit
		}
	}
	return l
}
