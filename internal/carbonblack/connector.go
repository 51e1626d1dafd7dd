package carbonblack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vtconnector/vtconnector/internal/config"
	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/obs"
	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/store"
)

// Deps are the parts the connector runs on, built by the caller.
type Deps struct {
	Store  *store.Store
	Engine *engine.Engine
	Cb     *Client
	Log    *slog.Logger
	// Owner names this connector in work leases; it must be stable across
	// restarts and unique among processes sharing the database (e.g.
	// "host/carbonblack").
	Owner string
	// Ready, when set, is called with the feed server's address once it
	// listens (tests and the demo use it).
	Ready func(addr string)
	// Tune shortens the connector's intervals (tests and the demo).
	Tune *Tuning
	// Obs, when set, is served at /status and /metrics on the feed port
	// and told about problems that need attention.
	Obs *obs.Observer
}

// NoteTLSUnverified keys the status page's note about an unverified
// Carbon Black server certificate.
const NoteTLSUnverified = "tls_unverified"

// Tuning overrides intervals that are fixed in production.
type Tuning struct {
	SyncEvery  time.Duration
	Idle       time.Duration
	Debounce   time.Duration
	Recheck    time.Duration
	RetryEvery time.Duration
}

// Run runs the Carbon Black connector until ctx ends: the feed server,
// the feed's registration and syncs, the collector, the scanners and the
// periodic re-check of old verdicts. It returns an error only for what
// retrying cannot fix (the feed server cannot listen, the Carbon Black
// server refuses the token at start).
func Run(ctx context.Context, cfg *config.CarbonBlack, d Deps) error {
	log := d.Log
	switch {
	case cfg.UploadsEnabled() && cfg.UploadMode == string(engine.Private):
		log.Warn("*** BINARY UPLOADS ARE ON, PRIVATE (virustotal_upload_mode=private): binaries VirusTotal does not know are sent to VirusTotal Private Scanning (not shared; sandbox verdicts only) ***",
			"file_types", cfg.UploadFileTypes, "unsigned_only", cfg.UploadUnsignedOnly, "max_size", cfg.MaxBinarySize)
	case cfg.UploadsEnabled():
		log.Warn("*** BINARY UPLOADS ARE ON (submit_full_binaries=1, virustotal_deep_scan_threads>0): binaries VirusTotal does not know are sent to VirusTotal, where other customers can download them ***",
			"file_types", cfg.UploadFileTypes, "unsigned_only", cfg.UploadUnsignedOnly, "max_size", cfg.MaxBinarySize)
	}
	if !cfg.UploadsEnabled() && (cfg.SubmitFullBinaries || cfg.DeepScanThreads > 0) {
		log.Info("binary uploads are off: they need both submit_full_binaries=1 and virustotal_deep_scan_threads>0")
	}
	if strings.HasPrefix(strings.ToLower(cfg.ServerURL), "https://") && !cfg.ServerSSLVerify && cfg.ServerCAFile == "" {
		msg := "the Carbon Black server's TLS certificate is NOT verified (carbonblack_server_sslverify=0, the original's default): anyone on the path can read carbonblack_server_token; set carbonblack_server_sslverify=1, and carbonblack_server_ca_file for a private CA"
		log.Warn("*** " + msg + " ***")
		if d.Obs != nil {
			d.Obs.Note(NoteTLSUnverified, msg)
		}
	}
	if info, err := d.Cb.Info(ctx); err != nil {
		if errors.Is(err, ErrCbAuth) {
			return fmt.Errorf("carbonblack: the server refused carbonblack_server_token: %w", err)
		}
		log.Error("Carbon Black server not reachable yet; the connector keeps trying", "url", cfg.ServerURL, "error", err)
		if d.Obs != nil {
			d.Obs.Problem(obs.ProblemCarbonBlackUnreachable, "Carbon Black server not reachable at start: "+err.Error())
		}
	} else {
		log.Info("connected to the Carbon Black server", "url", cfg.ServerURL, "version", info.Version)
	}
	if err := d.Store.Resume(ctx); err != nil {
		return fmt.Errorf("carbonblack: %w", err)
	}
	if n, err := d.Store.ReleaseLeases(ctx, d.Owner+"/"); err != nil {
		return fmt.Errorf("carbonblack: %w", err)
	} else if n > 0 {
		log.Warn("took back work left in flight by a previous run that did not stop cleanly", "items", n)
	}
	t := Tuning{SyncEvery: time.Minute, Idle: 5 * time.Second, Debounce: 500 * time.Millisecond, Recheck: time.Hour, RetryEvery: 30 * time.Second}
	if d.Tune != nil {
		t = *d.Tune
	}
	tmp := os.TempDir()

	// The original's verdicts are imported before anything is published
	// or synced: the first render serves them, and no full sync can drop
	// their tags from Carbon Black before.
	imported := importAtStart(ctx, cfg, d)
	cache := NewFeedCache()
	published, err := d.Store.CountResults(ctx, ResultsNS)
	if err != nil {
		return fmt.Errorf("carbonblack: %w", err)
	}
	reg := NewRegistrar(d.Cb, RegistrarConfig{FullSyncAtStart: published > 0 && imported,
		Name: FeedName, FeedURL: cfg.FeedURL(), UseProxy: cfg.FeedUseProxy, ValidateServerCert: cfg.FeedValidateServerCert,
		Username: cfg.FeedUsername, Password: cfg.FeedPassword.Reveal(), Register: cfg.RegisterFeed, SyncEvery: t.SyncEvery,
		RetryEvery: t.RetryEvery, Manage: ManagedFeedSettings(cfg),
		OnDisabled: func(disabled bool) {
			if d.Obs == nil {
				return
			}
			if disabled {
				d.Obs.Problem(ProblemFeedDisabled, "the feed "+FeedName+" is disabled on the Carbon Black server: vtconnector leaves it so and requests no sync; enable it on the Threat Intelligence page for its verdicts to reach Carbon Black")
			} else {
				d.Obs.Resolve(ProblemFeedDisabled)
			}
		},
	}, log.With("part", "registrar"))
	pub := NewPublisher(d.Store, cache, DefaultFeedInfo(), FeedOptions{MinPositives: cfg.FeedMinPositives, IncludeSHA256: cfg.FeedIncludeSHA256}, reg, log.With("part", "feed"))
	if t.Debounce > 0 {
		pub.debounce = t.Debounce
	}
	srv := NewServer(ServerConfig{Addr: cfg.ListenAddr(), CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, PublicPages: cfg.ListenerPublicPages,
		Username: cfg.FeedUsername, Password: cfg.FeedPassword.Reveal(), Mount: mount(d.Obs)}, cache, StoreVerdicts{d.Store}, log.With("part", "server"))
	col := NewCollector(cbProbe{d.Cb, d.Obs}, d.Store, CollectorConfig{
		FeedName: FeedName, FilterQuery: cfg.BinaryFilterQuery, MaxBinarySize: cfg.MaxBinarySize, PageSize: cfg.PollPageSize,
		Sleep: cfg.SleepBetweenBatches, BackfillSleep: cfg.BackfillSleepBetweenBatches,
	}, log.With("part", "collector"))
	scan := NewScanner(d.Store, d.Engine, d.Cb, ScannerConfig{
		QuickWorkers: cfg.QuickScanThreads, DeepWorkers: cfg.DeepScanThreads, Uploads: cfg.UploadsEnabled(),
		UploadMode:   engine.Mode(cfg.UploadMode),
		RescanWindow: cfg.RescanWindow, MaxBinarySize: cfg.MaxBinarySize, TempDir: tmp, Owner: d.Owner,
		Idle: t.Idle,
	}, log.With("part", "scanner"), pub.Changed)
	scan.obs = d.Obs
	col.OnQueued = scan.Wake

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx) })
	g.Go(func() error {
		select {
		case <-gctx.Done():
			return nil
		case <-srv.Ready():
		}
		log.Info("feed served", "url", cfg.FeedURL(), "listen", srv.Addr())
		if d.Ready != nil {
			d.Ready(srv.Addr())
		}
		return nil
	})
	g.Go(func() error { return pub.Run(gctx) })
	feedUp := make(chan struct{}) // served and rendered: the Cb server can fetch it
	g.Go(func() error {
		for _, c := range []<-chan struct{}{srv.Ready(), pub.Rendered()} {
			select {
			case <-gctx.Done():
				return nil
			case <-c:
			}
		}
		close(feedUp)
		return nil
	})
	g.Go(func() error { return reg.Run(gctx, feedUp) })
	g.Go(func() error { return col.Run(gctx) })
	g.Go(func() error { return scan.Run(gctx) })
	g.Go(func() error { return recheck(gctx, d.Store, cfg.DaysRescan, t.Recheck, log) })
	if d.Obs != nil {
		g.Go(func() error { return d.Obs.Run(gctx) })
	}
	err = g.Wait()
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// ProblemFeedDisabled is the status page's problem key while an
// administrator has the feed disabled.
const ProblemFeedDisabled = "feed_disabled"

// ManagedFeedSettings are the settings of an existing feed that
// connector.conf sets explicitly, the only ones the connector changes.
func ManagedFeedSettings(cfg *config.CarbonBlack) FeedSettings {
	return FeedSettings{
		URL:                cfg.IsSet("feed_host") || cfg.IsSet("listener_port") || cfg.IsSet("cert_file") || cfg.IsSet("key_file"),
		UseProxy:           cfg.IsSet("feed_use_proxy"),
		ValidateServerCert: cfg.IsSet("feed_validate_server_cert"),
		Auth:               cfg.IsSet("feed_username") || cfg.IsSet("feed_password"),
	}
}

// ProblemLegacyImport is the status page's problem key when the
// original connector's database could not be imported.
const ProblemLegacyImport = "legacy_import"

// importAtStart imports the original connector's database once (the
// store records it) and reports the import in the log and on the status
// page. It returns false when the import failed: the connector then asks
// for no full sync at start, which would drop the original's tags.
func importAtStart(ctx context.Context, cfg *config.CarbonBlack, d Deps) bool {
	log := d.Log.With("part", "import")
	note := func(msg string) {
		if d.Obs != nil {
			d.Obs.Note(ProblemLegacyImport, msg)
		}
	}
	if last, ok, err := LastLegacyImport(ctx, d.Store); err != nil {
		log.Warn("record of the earlier import unreadable", "error", err)
	} else if ok {
		log.Info("the original connector's database was imported earlier; not again", "summary", last.Summary())
		note(last.Summary())
		return true
	}
	if cfg.LegacyDatabase == "" {
		return true
	}
	rep, err := ImportLegacy(ctx, d.Store, cfg.LegacyDatabase, log)
	switch {
	case errors.Is(err, ErrNoLegacyDatabase) && !cfg.IsSet("legacy_database"):
		log.Info("no database of the original connector to import", "legacy_database", cfg.LegacyDatabase)
		return true
	case errors.Is(err, ErrNoLegacyDatabase):
		log.Warn("legacy_database does not exist; nothing imported", "legacy_database", cfg.LegacyDatabase)
		if d.Obs != nil {
			d.Obs.Problem(ProblemLegacyImport, "legacy_database "+cfg.LegacyDatabase+" does not exist; nothing imported")
		}
		return true
	case err != nil:
		log.Error("IMPORT OF THE ORIGINAL CONNECTOR'S DATABASE FAILED; it is tried again at the next start", "error", err)
		if d.Obs != nil {
			d.Obs.Problem(ProblemLegacyImport, "import of "+cfg.LegacyDatabase+" failed (tried again at the next start): "+err.Error())
		}
		return false
	}
	note(rep.Summary())
	return true
}

// recheck puts verdicts older than days back in the queue, so that old
// verdicts (and files VirusTotal did not know) are looked at again.
func recheck(ctx context.Context, st *store.Store, days int, every time.Duration, log *slog.Logger) error {
	if days <= 0 {
		return nil
	}
	for {
		before := time.Now().Add(-time.Duration(days) * 24 * time.Hour)
		for _, state := range []string{store.StateDone, store.StateNotFound} {
			n, err := st.RequeueOlder(ctx, state, KindBinary, before)
			if err != nil && ctx.Err() == nil {
				log.Warn("re-check of old verdicts failed", "error", err)
			}
			if n > 0 {
				log.Info("old verdicts queued for a new look", "count", n, "state", state, "days_rescan", days)
			}
		}
		if retry.Sleep(ctx, every) != nil {
			return nil
		}
	}
}

func mount(o *obs.Observer) func(*http.ServeMux) {
	if o == nil {
		return nil
	}
	return o.Register
}

// cbProbe reports whether the Carbon Black server answers the collector's
// searches as a problem on the status page.
type cbProbe struct {
	cb  binarySearcher
	obs *obs.Observer
}

func (p cbProbe) SearchBinaries(ctx context.Context, q string, start, rows int) (*SearchPage, int, error) {
	page, skipped, err := p.cb.SearchBinaries(ctx, q, start, rows)
	if p.obs != nil {
		switch {
		case err == nil:
			p.obs.Resolve(obs.ProblemCarbonBlackUnreachable)
		case ctx.Err() == nil:
			p.obs.Problem(obs.ProblemCarbonBlackUnreachable, "binary search failed: "+err.Error())
		}
	}
	return page, skipped, err
}

// RecentVerdicts lists the verdicts that changed last, for the status page.
func RecentVerdicts(st *store.Store) func(ctx context.Context, n int) ([]obs.Verdict, error) {
	return func(ctx context.Context, n int) ([]obs.Verdict, error) {
		rs, err := st.RecentResults(ctx, ResultsNS, n)
		if err != nil {
			return nil, err
		}
		out := make([]obs.Verdict, 0, len(rs))
		for _, r := range rs {
			v, err := decodeVerdict(r)
			if err != nil {
				continue
			}
			out = append(out, obs.Verdict{Kind: "file", ID: v.MD5, Label: v.Label, Malicious: v.Positives, Total: v.Total, Link: v.Link, At: v.UpdatedAt})
		}
		return out, nil
	}
}
