package carbonblack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/obs"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// ResultsNS is the store namespace of the verdicts.
const ResultsNS = "cb.verdict"

// scanStore is the part of the store the scanner uses.
type scanStore interface {
	Claim(ctx context.Context, owner string, kinds []string, n int, lease time.Duration) ([]store.Item, error)
	ExtendLease(ctx context.Context, id int64, owner string, lease time.Duration) error
	Complete(ctx context.Context, id int64, owner string, o store.Outcome) error
	Enqueue(ctx context.Context, it store.NewItem) (bool, error)
	Paused(ctx context.Context) (store.PauseState, error)
	PutResult(ctx context.Context, ns, key string, value []byte) (bool, error)
}

// vtFiles is the part of the VirusTotal client the scanner calls directly
// (always through engine.Do, so within the quota).
type vtFiles interface {
	Reanalyse(ctx context.Context, hash string) (string, error)
	Analysis(ctx context.Context, id string) (*vt.Analysis, error)
	UploadFile(ctx context.Context, path string) (string, error)
}

// binaryDownloader is the part of the Cb client deep scans use.
type binaryDownloader interface {
	DownloadBinary(ctx context.Context, md5, dir string, maxSize int64) (string, int64, error)
}

// ScannerConfig tunes the Scanner.
type ScannerConfig struct {
	QuickWorkers  int           // virustotal_quick_scan_threads
	DeepWorkers   int           // virustotal_deep_scan_threads (uploads only when Uploads)
	Uploads       bool          // submit_full_binaries && deep workers > 0
	RescanWindow  time.Duration // ask VirusTotal to rescan reports older than this; 0 = never
	MaxBinarySize int64
	TempDir       string
	Owner         string        // lease owner name, unique per process
	Lease         time.Duration // default 2 min, extended while the work lasts
	QuotaWait     time.Duration // longest wait for quota before parking the item (default 5 min)
	PollInterval  time.Duration // between polls of a pending analysis (default 2 min)
	Idle          time.Duration // sleep when nothing is ready (default 5 s)
}

// Scanner works through the queue: quick scans look hashes up, deep scans
// download and upload binaries VirusTotal does not know, and pending
// analyses (rescans, uploads) are collected later. Every attempt ends in
// one explicit outcome, so quota, Carbon Black outages and VirusTotal
// outages park an item instead of losing it.
type Scanner struct {
	st       scanStore
	eng      *engine.Engine
	files    vtFiles
	cb       binaryDownloader
	cfg      ScannerConfig
	log      *slog.Logger
	onChange func()

	pauseReported atomic.Bool

	obs *obs.Observer // may be nil

	kickMu sync.Mutex
	kick   chan struct{} // closed (and replaced) by Wake
}

// Wake wakes idle workers at once, e.g. after the collector queued work.
func (s *Scanner) Wake() {
	s.kickMu.Lock()
	defer s.kickMu.Unlock()
	close(s.kick)
	s.kick = make(chan struct{})
}

// idle waits until Wake, the idle interval, or the end of ctx.
func (s *Scanner) idle(ctx context.Context) {
	s.kickMu.Lock()
	k := s.kick
	s.kickMu.Unlock()
	t := time.NewTimer(s.cfg.Idle)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-k:
	}
}

// NewScanner returns a scanner. onChange is called after a verdict changed.
func NewScanner(st scanStore, eng *engine.Engine, files vtFiles, cb binaryDownloader, cfg ScannerConfig, log *slog.Logger, onChange func()) *Scanner {
	if cfg.Lease <= 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.QuotaWait <= 0 {
		cfg.QuotaWait = 5 * time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Minute
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 5 * time.Second
	}
	if cfg.QuickWorkers <= 0 {
		cfg.QuickWorkers = 1
	}
	if onChange == nil {
		onChange = func() {}
	}
	return &Scanner{st: st, eng: eng, files: files, cb: cb, cfg: cfg, log: log, onChange: onChange, kick: make(chan struct{})}
}

// Run runs the workers until ctx ends; items in flight are finished or
// handed back to the queue.
func (s *Scanner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i := range s.cfg.QuickWorkers {
		wg.Go(func() { s.worker(ctx, fmt.Sprintf("quick-%d", i), []string{KindBinary}) })
	}
	if s.cfg.Uploads {
		for i := range s.cfg.DeepWorkers {
			wg.Go(func() { s.worker(ctx, fmt.Sprintf("deep-%d", i), []string{KindDeep}) })
		}
	}
	wg.Wait()
	return nil
}

func (s *Scanner) worker(ctx context.Context, name string, kinds []string) {
	owner := s.cfg.Owner + "/" + name
	for ctx.Err() == nil {
		items, err := s.st.Claim(ctx, owner, kinds, 1, s.cfg.Lease)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("claiming work failed", "worker", name, "error", err)
			}
			_ = sleepCtx(ctx, s.cfg.Idle)
			continue
		}
		if len(items) == 0 {
			s.reportPause(ctx)
			s.idle(ctx)
			continue
		}
		s.pauseReported.Store(false)
		s.process(ctx, owner, items[0])
	}
}

func (s *Scanner) reportPause(ctx context.Context) {
	ps, err := s.st.Paused(ctx)
	if err != nil || !ps.Paused {
		return
	}
	if s.pauseReported.CompareAndSwap(false, true) {
		s.log.Error("SCANNING PAUSED: fix the configuration and restart (or run `vtconnector db requeue`)", "reason", ps.Reason, "since", ps.Since)
	}
}

// process works one item and records its outcome; the lease is extended
// while the work lasts.
func (s *Scanner) process(ctx context.Context, owner string, it store.Item) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.keepLease(wctx, owner, it.ID)

	var p binaryPayload
	var out store.Outcome
	if err := json.Unmarshal(it.Payload, &p); err != nil || !isMD5(p.MD5) {
		out = store.Permanent(fmt.Errorf("unreadable work item payload for %q", it.Key))
	} else if it.Kind == KindDeep {
		out = s.deep(wctx, it, p)
	} else {
		out = s.quick(wctx, it, p)
	}
	if ctx.Err() != nil {
		// Shutting down: hand the item back at once, without counting an attempt.
		out = store.RateLimited(time.Now())
	}
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer ccancel()
	if err := s.st.Complete(cctx, it.ID, owner, out); err != nil {
		s.log.Error("recording a result failed; the item will be retried when its lease expires", "md5", p.MD5, "outcome", out.String(), "error", err)
		return
	}
	s.log.Debug("binary processed", "md5", p.MD5, "kind", it.Kind, "outcome", out.String())
}

func (s *Scanner) keepLease(ctx context.Context, owner string, id int64) {
	t := time.NewTicker(s.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.st.ExtendLease(ctx, id, owner, s.cfg.Lease); err != nil && ctx.Err() == nil {
				s.log.Warn("extending a lease failed", "item", id, "error", err)
			}
		}
	}
}

func (s *Scanner) co() engine.CallOptions {
	return engine.CallOptions{Priority: engine.Backlog, MaxWait: s.cfg.QuotaWait}
}

// quick looks the hash up; it also collects a rescan it asked for.
func (s *Scanner) quick(ctx context.Context, it store.Item, p binaryPayload) store.Outcome {
	if p.Analysis != "" {
		done, out := s.poll(ctx, it, p)
		if !done {
			return out
		}
	}
	maxAge := time.Duration(0)
	if p.Analysis != "" {
		maxAge = -1 // the analysis just finished: fetch the new report
	}
	res, err := s.eng.Lookup(ctx, engine.Request{Kind: vt.KindFile, ID: p.MD5, CallOptions: s.co(), MaxAge: maxAge})
	if err != nil {
		return s.failure(err, it)
	}
	if !res.Found {
		s.save(ctx, Verdict{MD5: p.MD5})
		if s.cfg.Uploads {
			payload, _ := json.Marshal(binaryPayload{MD5: p.MD5, Size: p.Size, Name: p.Name, Added: p.Added})
			if _, err := s.st.Enqueue(ctx, store.NewItem{Kind: KindDeep, Key: p.MD5, Payload: payload, Priority: it.Priority}); err != nil {
				return store.Transient(fmt.Errorf("queue deep scan: %w", err))
			}
			s.Wake()
		}
		return store.NotFound()
	}
	v := VerdictFromObject(p.MD5, res.Object)
	if err := s.save(ctx, v); err != nil {
		return store.Transient(err)
	}
	if s.cfg.RescanWindow > 0 && p.Analysis == "" && !v.ScanDate.IsZero() && time.Since(v.ScanDate) >= s.cfg.RescanWindow {
		var id string
		co := s.co()
		co.Endpoint = "POST /files/{id}/analyse"
		err := s.eng.Do(ctx, co, func(ctx context.Context) error {
			var err error
			id, err = s.files.Reanalyse(ctx, p.MD5)
			return err
		})
		if err != nil {
			// The verdict we have stands; the rescan waits for the next round.
			s.log.Warn("rescan request failed", "md5", p.MD5, "error", err)
			return store.Done(nil)
		}
		s.log.Info("rescan requested", "md5", p.MD5, "last_scan", v.ScanDate, "analysis", id)
		p.Analysis, p.Since = id, time.Now()
		return s.pending(p)
	}
	return store.Done(nil)
}

// deep downloads a binary VirusTotal does not know, uploads it and
// collects the analysis.
func (s *Scanner) deep(ctx context.Context, it store.Item, p binaryPayload) store.Outcome {
	if p.Analysis != "" {
		done, out := s.poll(ctx, it, p)
		if !done {
			return out
		}
		res, err := s.eng.Lookup(ctx, engine.Request{Kind: vt.KindFile, ID: p.MD5, CallOptions: s.co(), MaxAge: -1})
		if err != nil {
			return s.failure(err, it)
		}
		if !res.Found {
			return store.PendingAnalysis(time.Now().Add(s.cfg.PollInterval), it.Payload)
		}
		if err := s.save(ctx, VerdictFromObject(p.MD5, res.Object)); err != nil {
			return store.Transient(err)
		}
		return store.Done(nil)
	}
	// Someone may have uploaded it meanwhile.
	res, err := s.eng.Lookup(ctx, engine.Request{Kind: vt.KindFile, ID: p.MD5, CallOptions: s.co()})
	if err != nil {
		return s.failure(err, it)
	}
	if res.Found {
		if err := s.save(ctx, VerdictFromObject(p.MD5, res.Object)); err != nil {
			return store.Transient(err)
		}
		return store.Done(nil)
	}
	path, size, err := s.cb.DownloadBinary(ctx, p.MD5, s.cfg.TempDir, s.cfg.MaxBinarySize)
	if err != nil {
		return s.failure(err, it)
	}
	defer os.Remove(path)
	var id string
	co := s.co()
	co.Endpoint = "POST /files"
	err = s.eng.Do(ctx, co, func(ctx context.Context) error {
		var err error
		id, err = s.files.UploadFile(ctx, path)
		return err
	})
	if err != nil {
		return s.failure(err, it)
	}
	s.log.Info("binary uploaded to VirusTotal", "md5", p.MD5, "bytes", size, "analysis", id)
	p.Analysis, p.Since = id, time.Now()
	return s.pending(p)
}

// poll asks for the state of p's analysis; done is true once completed.
func (s *Scanner) poll(ctx context.Context, it store.Item, p binaryPayload) (bool, store.Outcome) {
	var a *vt.Analysis
	co := s.co()
	co.Endpoint = "GET /analyses/{id}"
	err := s.eng.Do(ctx, co, func(ctx context.Context) error {
		var err error
		a, err = s.files.Analysis(ctx, p.Analysis)
		return err
	})
	switch {
	case errors.Is(err, vt.ErrNotFound):
		// The analysis is gone: look the file up afresh.
		return true, store.Outcome{}
	case err != nil:
		return false, s.failure(err, it)
	case !a.Completed():
		if time.Since(p.Since) > 24*time.Hour {
			s.log.Warn("analysis still not finished after a day; looking the file up again", "md5", p.MD5, "analysis", p.Analysis)
			return true, store.Outcome{}
		}
		return false, store.PendingAnalysis(time.Now().Add(s.cfg.PollInterval), it.Payload)
	}
	return true, store.Outcome{}
}

func (s *Scanner) pending(p binaryPayload) store.Outcome {
	b, _ := json.Marshal(p)
	return store.PendingAnalysis(time.Now().Add(s.cfg.PollInterval), b)
}

// failure maps an error to the item's outcome.
func (s *Scanner) failure(err error, it store.Item) store.Outcome {
	var qe *engine.QuotaExhaustedError
	switch {
	case errors.As(err, &qe):
		return store.RateLimited(qe.ResetAt)
	case errors.Is(err, vt.ErrAuth):
		if s.obs != nil {
			s.obs.Problem(obs.ProblemVTAuth, "VirusTotal rejected the API key (virustotal_api_token); scanning is paused until a restart")
		}
		return store.AuthError(fmt.Errorf("VirusTotal rejected the API key (virustotal_api_token): %w", err))
	case errors.Is(err, ErrCbAuth):
		return store.AuthError(fmt.Errorf("Carbon Black refused the API token (carbonblack_server_token): %w", err))
	case errors.Is(err, ErrCbTooLarge), errors.Is(err, vt.ErrTooLarge):
		return store.Permanent(err)
	case errors.Is(err, ErrCbNotFound) && it.Attempts >= 5:
		return store.Permanent(fmt.Errorf("binary not available on the Carbon Black server after %d attempts: %w", it.Attempts+1, err))
	case errors.Is(err, vt.ErrBadRequest), errors.Is(err, vt.ErrForbidden):
		return store.Permanent(err)
	default: // transient VirusTotal or Carbon Black trouble, a busy database
		return store.Transient(err)
	}
}

// save stores a verdict and signals a change.
func (s *Scanner) save(ctx context.Context, v Verdict) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	changed, err := s.st.PutResult(ctx, ResultsNS, v.MD5, b)
	if err != nil {
		return fmt.Errorf("save verdict: %w", err)
	}
	if changed {
		s.onChange()
	}
	return nil
}

// VerdictFromObject maps a VirusTotal file report to a verdict. Positives
// are the engines that say malicious; the total counts the engines that
// gave a verdict (malicious, suspicious, undetected, harmless).
func VerdictFromObject(md5 string, o *vt.Object) Verdict {
	v := Verdict{MD5: strings.ToUpper(md5), Found: true}
	if o == nil {
		return v
	}
	a := &o.Attributes
	v.SHA256 = strings.ToLower(a.SHA256)
	if v.SHA256 == "" && vt.IsHash(o.ID) && len(o.ID) == 64 {
		v.SHA256 = strings.ToLower(o.ID)
	}
	if st := a.LastAnalysisStats; st != nil {
		v.Positives, v.Suspicious = st.Malicious, st.Suspicious
		v.Total = st.Malicious + st.Suspicious + st.Undetected + st.Harmless
	}
	for _, d := range a.Detections() {
		v.Detections = append(v.Detections, Detection{Engine: d.EngineName, Result: d.Result})
	}
	if a.PopularThreat != nil {
		v.Label = a.PopularThreat.SuggestedThreatLabel
	}
	v.ScanDate = vt.Time(a.LastAnalysisDate)
	id := v.SHA256
	if id == "" {
		id = strings.ToLower(md5)
	}
	v.Link = vt.GUILink(vt.KindFile, id)
	return v
}
