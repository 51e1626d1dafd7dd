package carbonblack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/obs"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
	"github.com/vtconnector/vtconnector/internal/worker"
)

// ResultsNS is the store namespace of the verdicts.
const ResultsNS = "cb.verdict"

// scanStore is the part of the store the scanner uses.
type scanStore interface {
	worker.Queue
	Enqueue(ctx context.Context, it store.NewItem) (bool, error)
	Paused(ctx context.Context) (store.PauseState, error)
	PutResult(ctx context.Context, ns, key string, value []byte) (bool, error)
}

// verdictSource is the part of the engine the scanner asks: lookups,
// uploads, rescans and the collection of their analyses, all paced by the
// engine's quota scheduler.
type verdictSource interface {
	Lookup(ctx context.Context, r engine.Request) (engine.Result, error)
	Upload(ctx context.Context, u engine.Upload) (engine.Submission, error)
	Rescan(ctx context.Context, hash string, co engine.CallOptions) (engine.Submission, error)
	Collect(ctx context.Context, s *engine.Submission, co engine.CallOptions) (engine.Collected, error)
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
	UploadMode    engine.Mode   // virustotal_upload_mode: public or private
	RescanWindow  time.Duration // ask VirusTotal to rescan reports older than this; 0 = never
	MaxBinarySize int64
	TempDir       string
	Owner         string        // lease owner name, unique per process
	Lease         time.Duration // default 2 min, extended while the work lasts
	QuotaWait     time.Duration // longest wait for quota before parking the item (default 5 min)
	Idle          time.Duration // sleep when nothing is ready (default 5 s)
}

// Scanner works through the queue: quick scans look hashes up, deep scans
// download and upload binaries VirusTotal does not know, and pending
// analyses (rescans, uploads) are collected later. Every attempt ends in
// one explicit outcome, so quota, Carbon Black outages and VirusTotal
// outages park an item instead of losing it.
type Scanner struct {
	st       scanStore
	eng      verdictSource
	cb       binaryDownloader
	cfg      ScannerConfig
	log      *slog.Logger
	onChange func()
	quick    *worker.Pool
	deep     *worker.Pool

	pauseReported atomic.Bool

	obs *obs.Observer // may be nil
}

// NewScanner returns a scanner. onChange is called after a verdict changed.
func NewScanner(st scanStore, eng verdictSource, cb binaryDownloader, cfg ScannerConfig, log *slog.Logger, onChange func()) *Scanner {
	if cfg.QuotaWait <= 0 {
		cfg.QuotaWait = 5 * time.Minute
	}
	if cfg.QuickWorkers <= 0 {
		cfg.QuickWorkers = 1
	}
	if cfg.UploadMode == "" {
		cfg.UploadMode = engine.Public
	}
	if onChange == nil {
		onChange = func() {}
	}
	const quickBatch = 16
	s := &Scanner{st: st, eng: eng, cb: cb, cfg: cfg, log: log, onChange: onChange}
	pool := func(name string, workers, batch int, kind string) *worker.Pool {
		return worker.New(st, worker.Config{Name: name, Owner: cfg.Owner, Kinds: []string{kind}, Workers: workers, Batch: batch,
			Lease: cfg.Lease, Idle: cfg.Idle, Log: log, OnIdle: s.reportPause, OnClaim: func() { s.pauseReported.Store(false) }}, s.handle)
	}
	// Quick scans are many and short: claimed and recorded in batches
	// (one commit for many). Deep scans are few and long.
	s.quick = pool("quick", cfg.QuickWorkers, quickBatch, KindBinary)
	if cfg.Uploads && cfg.DeepWorkers > 0 {
		s.deep = pool("deep", cfg.DeepWorkers, 1, KindDeep)
	}
	return s
}

// Wake wakes idle workers at once, e.g. after the collector queued work.
func (s *Scanner) Wake() {
	s.quick.Wake()
	if s.deep != nil {
		s.deep.Wake()
	}
}

// Run runs the workers until ctx ends; items in flight are handed back to
// the queue.
func (s *Scanner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.quick.Run(ctx) })
	if s.deep != nil {
		wg.Go(func() { _ = s.deep.Run(ctx) })
	}
	wg.Wait()
	return nil
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

// handle works one queue item to its outcome.
func (s *Scanner) handle(ctx context.Context, it store.Item) store.Outcome {
	var p binaryPayload
	if err := json.Unmarshal(it.Payload, &p); err != nil || !isMD5(p.MD5) {
		return store.Permanent(fmt.Errorf("unreadable work item payload for %q", it.Key))
	}
	p.upgrade()
	if it.Kind == KindDeep {
		return s.deepScan(ctx, it, p)
	}
	return s.quickScan(ctx, it, p)
}

func (s *Scanner) co() engine.CallOptions {
	return engine.CallOptions{Priority: engine.Backlog, MaxWait: s.cfg.QuotaWait}
}

// quickScan looks the hash up; it also collects a rescan it asked for.
func (s *Scanner) quickScan(ctx context.Context, it store.Item, p binaryPayload) store.Outcome {
	var res engine.Result
	if p.Submission != nil {
		out, done := s.collect(ctx, it, &p)
		if !done {
			return out.Outcome
		}
		res = out.res
	} else {
		var err error
		res, err = s.eng.Lookup(ctx, engine.Request{Kind: vt.KindFile, ID: p.MD5, CallOptions: s.co()})
		if err != nil {
			return s.failure(ctx, err, it)
		}
	}
	if !res.Found {
		if err := s.save(ctx, Verdict{MD5: p.MD5}); err != nil {
			return store.Transient(err)
		}
		if s.deep != nil {
			p.Submission = nil
			payload, _ := json.Marshal(p)
			if _, err := s.st.Enqueue(ctx, store.NewItem{Kind: KindDeep, Key: p.MD5, Payload: payload, Priority: it.Priority}); err != nil {
				return store.Transient(fmt.Errorf("queue deep scan: %w", err))
			}
			s.deep.Wake()
		}
		return store.NotFound()
	}
	v := VerdictFromObject(p.MD5, res.Object)
	if err := s.save(ctx, v); err != nil {
		return store.Transient(err)
	}
	if s.cfg.RescanWindow > 0 && p.Submission == nil && !v.ScanDate.IsZero() && time.Since(v.ScanDate) >= s.cfg.RescanWindow {
		sub, err := s.eng.Rescan(ctx, p.MD5, s.co())
		if err != nil {
			// The verdict we have stands; the rescan waits for the next round.
			s.log.Warn("rescan request failed", "md5", p.MD5, "error", err)
			return store.Done(nil)
		}
		s.log.Info("rescan requested", "md5", p.MD5, "last_scan", v.ScanDate, "analysis", sub.Analysis)
		p.Submission = &sub
		return s.pending(p, time.Now())
	}
	return store.Done(nil)
}

// deepScan downloads a binary VirusTotal does not know, uploads it and
// collects the analysis.
func (s *Scanner) deepScan(ctx context.Context, it store.Item, p binaryPayload) store.Outcome {
	if p.Submission != nil {
		out, done := s.collect(ctx, it, &p)
		if !done {
			return out.Outcome
		}
		if !out.res.Found {
			// VirusTotal has no report yet although the analysis ended:
			// look again later, within the analysis wait.
			p.Submission.Since = time.Now().UTC()
			return s.pending(p, time.Now())
		}
		if err := s.save(ctx, VerdictFromObject(p.MD5, out.res.Object)); err != nil {
			return store.Transient(err)
		}
		return store.Done(nil)
	}
	if s.cfg.UploadMode == engine.Public {
		// Someone may have uploaded it meanwhile.
		res, err := s.eng.Lookup(ctx, engine.Request{Kind: vt.KindFile, ID: p.MD5, CallOptions: s.co()})
		if err != nil {
			return s.failure(ctx, err, it)
		}
		if res.Found {
			if err := s.save(ctx, VerdictFromObject(p.MD5, res.Object)); err != nil {
				return store.Transient(err)
			}
			return store.Done(nil)
		}
	}
	path, _, err := s.cb.DownloadBinary(ctx, p.MD5, s.cfg.TempDir, s.cfg.MaxBinarySize)
	if err != nil {
		return s.failure(ctx, err, it)
	}
	defer os.Remove(path)
	sub, err := s.eng.Upload(ctx, engine.Upload{Path: path, Mode: s.cfg.UploadMode, CallOptions: s.co(),
		Facts: engine.UploadFacts{Signed: p.Signed}})
	if err != nil {
		return s.failure(ctx, err, it)
	}
	s.log.Info("binary uploaded to VirusTotal", "md5", p.MD5, "mode", sub.Mode, "analysis", sub.Analysis)
	p.Submission = &sub
	return s.pending(p, time.Now())
}

// collected is a finished submission's report.
type collected struct {
	store.Outcome
	res engine.Result
}

// collect polls p's submission: done is false while it is still running
// (the outcome then parks the item until the next poll).
func (s *Scanner) collect(ctx context.Context, it store.Item, p *binaryPayload) (collected, bool) {
	c, err := s.eng.Collect(ctx, p.Submission, s.co())
	if err != nil {
		return collected{Outcome: s.failure(ctx, err, it)}, false
	}
	if !c.Done {
		return collected{Outcome: s.pending(*p, c.NextPoll)}, false
	}
	return collected{res: c.Result}, true
}

func (s *Scanner) pending(p binaryPayload, at time.Time) store.Outcome {
	b, _ := json.Marshal(p)
	return store.PendingAnalysis(at, b)
}

// failure maps an error to the item's outcome: Carbon Black's errors
// here, the engine's and VirusTotal's in worker.Outcome.
func (s *Scanner) failure(ctx context.Context, err error, it store.Item) store.Outcome {
	switch {
	case ctx.Err() != nil:
		return store.HandBack()
	case errors.Is(err, vt.ErrAuth):
		if s.obs != nil {
			s.obs.Problem(obs.ProblemVTAuth, "VirusTotal rejected the API key (virustotal_api_token); scanning is paused until a restart")
		}
		return store.AuthError(fmt.Errorf("VirusTotal rejected the API key (virustotal_api_token): %w", err))
	case errors.Is(err, ErrCbAuth):
		return store.AuthError(fmt.Errorf("Carbon Black refused the API token (carbonblack_server_token): %w", err))
	case errors.Is(err, ErrCbTooLarge):
		return store.Permanent(err)
	case errors.Is(err, ErrCbNotFound) && it.Attempts >= 5:
		return store.Permanent(fmt.Errorf("binary not available on the Carbon Black server after %d attempts: %w", it.Attempts+1, err))
	}
	return worker.Outcome(ctx, err)
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
	if o.Private {
		v.Private = true
		for _, name := range slices.Sorted(maps.Keys(a.SandboxVerdicts)) {
			sv := a.SandboxVerdicts[name]
			if sv.Category != "malicious" {
				continue
			}
			if sv.SandboxName != "" {
				name = sv.SandboxName
			}
			v.Detections = append(v.Detections, Detection{Engine: name, Result: strings.Join(append(sv.MalwareNames, sv.MalwareClassification...), ", ")})
		}
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
