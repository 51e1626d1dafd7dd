package carbonblack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// fakeEngine answers the scanner's questions from tables, recording
// every call: the scanner's loop tested without HTTP.
type fakeEngine struct {
	mu       sync.Mutex
	calls    []string
	lookup   func(r engine.Request) (engine.Result, error)
	upload   func(u engine.Upload) (engine.Submission, error)
	collect  func(s *engine.Submission) (engine.Collected, error)
	rescanFn func(hash string) (engine.Submission, error)
}

func (f *fakeEngine) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeEngine) Lookup(_ context.Context, r engine.Request) (engine.Result, error) {
	f.record(fmt.Sprintf("lookup %s maxage=%v", r.ID, r.MaxAge))
	return f.lookup(r)
}

func (f *fakeEngine) Upload(_ context.Context, u engine.Upload) (engine.Submission, error) {
	f.record(fmt.Sprintf("upload %s signed=%v", u.Mode, u.Facts.Signed))
	return f.upload(u)
}

func (f *fakeEngine) Rescan(_ context.Context, hash string, _ engine.CallOptions) (engine.Submission, error) {
	f.record("rescan " + hash)
	return f.rescanFn(hash)
}

func (f *fakeEngine) Collect(_ context.Context, s *engine.Submission, _ engine.CallOptions) (engine.Collected, error) {
	f.record("collect " + s.Analysis)
	return f.collect(s)
}

// fakeCb hands out downloaded binaries as temporary files.
type fakeCb struct {
	dir     string
	content []byte
	err     error
}

func (c *fakeCb) DownloadBinary(_ context.Context, md5, _ string, _ int64) (string, int64, error) {
	if c.err != nil {
		return "", 0, c.err
	}
	p := filepath.Join(c.dir, md5)
	return p, int64(len(c.content)), os.WriteFile(p, c.content, 0o600)
}

const testMD5 = "0123456789ABCDEF0123456789ABCDEF"

func report(positives int) *vt.Object {
	return &vt.Object{Type: "file", ID: strings.Repeat("ab", 32), Attributes: vt.Attributes{
		SHA256: strings.Repeat("ab", 32), MD5: strings.ToLower(testMD5), LastAnalysisDate: time.Now().Add(-time.Hour).Unix(),
		LastAnalysisStats: &vt.Stats{Malicious: positives, Undetected: 60 - positives},
	}}
}

type scanWorld struct {
	st   *store.Store
	skip atomic.Int64 // how far ahead the store's clock is, for claims
	eng  *fakeEngine
	cb   *fakeCb
	scan *Scanner
}

func newScanWorld(t *testing.T, cfg ScannerConfig) *scanWorld {
	t.Helper()
	w := &scanWorld{eng: &fakeEngine{}, cb: &fakeCb{dir: t.TempDir(), content: []byte("MZ binary")}}
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "scan.db"),
		store.WithClock(func() time.Time { return time.Now().Add(time.Duration(w.skip.Load())) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.st = st
	cfg.Owner, cfg.TempDir = "test", t.TempDir()
	w.scan = NewScanner(st, w.eng, w.cb, cfg, slog.New(slog.DiscardHandler), nil)
	return w
}

// work queues an item, lets the scanner handle it once, records the
// outcome, and returns the item as stored afterwards.
func (w *scanWorld) work(t *testing.T, ctx context.Context, kind string, p binaryPayload) store.Item {
	t.Helper()
	b, _ := json.Marshal(p)
	if _, err := w.st.Enqueue(t.Context(), store.NewItem{Kind: kind, Key: p.MD5, Payload: b}); err != nil {
		t.Fatal(err)
	}
	return w.again(t, ctx, kind, p.MD5)
}

// again claims the item (whatever its next attempt time) and handles it.
func (w *scanWorld) again(t *testing.T, ctx context.Context, kind, key string) store.Item {
	t.Helper()
	w.skip.Store(int64(48 * time.Hour)) // whenever the item is due, it is due now
	items, err := w.st.Claim(t.Context(), "test/w", []string{kind}, 1, 72*time.Hour)
	w.skip.Store(0)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim: %v %d", err, len(items))
	}
	out := w.scan.handle(ctx, items[0])
	if ctx.Err() != nil {
		out = store.HandBack()
	}
	if err := w.st.Complete(t.Context(), items[0].ID, "test/w", out); err != nil {
		t.Fatal(err)
	}
	it, _, err := w.st.GetItem(t.Context(), kind, key)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func (w *scanWorld) verdict(t *testing.T) (Verdict, bool) {
	t.Helper()
	r, ok, err := w.st.GetResult(t.Context(), ResultsNS, testMD5)
	if err != nil {
		t.Fatal(err)
	}
	var v Verdict
	if ok {
		_ = json.Unmarshal(r.Value, &v)
	}
	return v, ok
}

func TestQuickScanStoresTheVerdict(t *testing.T) {
	w := newScanWorld(t, ScannerConfig{})
	w.eng.lookup = func(engine.Request) (engine.Result, error) {
		return engine.Result{Kind: vt.KindFile, Found: true, Object: report(12)}, nil
	}
	it := w.work(t, t.Context(), KindBinary, binaryPayload{MD5: testMD5})
	if it.State != store.StateDone {
		t.Fatalf("state %s (%s), want done", it.State, it.LastError)
	}
	v, ok := w.verdict(t)
	if !ok || !v.Found || v.Positives != 12 || v.Total != 60 || v.MD5 != testMD5 {
		t.Errorf("verdict %+v", v)
	}
}

func TestQuickScanOfAnUnknownFileQueuesADeepScanWhenUploadsAreOn(t *testing.T) {
	for _, uploads := range []bool{false, true} {
		t.Run(fmt.Sprint("uploads=", uploads), func(t *testing.T) {
			w := newScanWorld(t, ScannerConfig{Uploads: uploads, DeepWorkers: 1})
			w.eng.lookup = func(engine.Request) (engine.Result, error) { return engine.Result{Kind: vt.KindFile}, nil }
			it := w.work(t, t.Context(), KindBinary, binaryPayload{MD5: testMD5, Signed: true})
			if it.State != store.StateNotFound {
				t.Fatalf("state %s, want not_found", it.State)
			}
			if v, ok := w.verdict(t); !ok || v.Found {
				t.Errorf("verdict %+v %v, want a stored not-found verdict", v, ok)
			}
			deep, ok, _ := w.st.GetItem(t.Context(), KindDeep, testMD5)
			if ok != uploads {
				t.Fatalf("deep scan queued: %v, want %v", ok, uploads)
			}
			if ok {
				var p binaryPayload
				_ = json.Unmarshal(deep.Payload, &p)
				if !p.Signed || p.Submission != nil {
					t.Errorf("deep payload %+v: want the signature carried and no submission", p)
				}
			}
		})
	}
}

func TestDeepScanUploadsThenCollects(t *testing.T) {
	w := newScanWorld(t, ScannerConfig{Uploads: true, DeepWorkers: 1, UploadMode: engine.Private})
	w.eng.lookup = func(engine.Request) (engine.Result, error) { return engine.Result{Kind: vt.KindFile}, nil }
	w.eng.upload = func(u engine.Upload) (engine.Submission, error) {
		if b, err := os.ReadFile(u.Path); err != nil || string(b) != "MZ binary" {
			t.Errorf("uploaded %q (%v), want the downloaded binary", b, err)
		}
		return engine.Submission{Analysis: "an-1", Mode: u.Mode, Kind: vt.KindFile, Subject: testMD5, Since: time.Now()}, nil
	}
	polls := 0
	w.eng.collect = func(s *engine.Submission) (engine.Collected, error) {
		polls++
		if polls == 1 {
			return engine.Collected{NextPoll: time.Now().Add(time.Minute)}, nil
		}
		o := report(3)
		o.Private = true
		o.Attributes.SandboxVerdicts = map[string]vt.SandboxVerdict{"Zenbox": {Category: "malicious", MalwareNames: []string{"Emotet"}}}
		return engine.Collected{Done: true, Result: engine.Result{Kind: vt.KindFile, Found: true, Object: o}}, nil
	}
	it := w.work(t, t.Context(), KindDeep, binaryPayload{MD5: testMD5, Signed: true})
	if it.State != store.StatePending {
		t.Fatalf("after the upload: state %s (%s), want pending", it.State, it.LastError)
	}
	var p binaryPayload
	_ = json.Unmarshal(it.Payload, &p)
	if p.Submission == nil || p.Submission.Analysis != "an-1" || p.Submission.Mode != engine.Private {
		t.Fatalf("payload %+v: the submission is not remembered", p)
	}
	if it = w.again(t, t.Context(), KindDeep, testMD5); it.State != store.StatePending || time.Until(it.NextAttemptAt) < 50*time.Second {
		t.Fatalf("analysis running: state %s next %s, want pending until the engine's next poll", it.State, it.NextAttemptAt)
	}
	if it = w.again(t, t.Context(), KindDeep, testMD5); it.State != store.StateDone {
		t.Fatalf("analysis done: state %s (%s)", it.State, it.LastError)
	}
	v, _ := w.verdict(t)
	if !v.Private || v.Positives != 3 || len(v.Detections) == 0 || v.Detections[len(v.Detections)-1].Engine != "Zenbox" {
		t.Errorf("verdict %+v: want the private report's sandbox verdicts", v)
	}
	want := []string{"upload private signed=true", "collect an-1", "collect an-1"}
	if fmt.Sprint(w.eng.calls) != fmt.Sprint(want) {
		t.Errorf("engine calls %q, want %q (private mode asks no public lookup)", w.eng.calls, want)
	}
}

func TestDeepScanRefusedUploadFailsTheItemWithTheReason(t *testing.T) {
	w := newScanWorld(t, ScannerConfig{Uploads: true, DeepWorkers: 1})
	w.eng.lookup = func(engine.Request) (engine.Result, error) { return engine.Result{Kind: vt.KindFile}, nil }
	w.eng.upload = func(engine.Upload) (engine.Submission, error) {
		return engine.Submission{}, &engine.UploadRefusedError{Reason: engine.RefusedSigned, Detail: "the file is signed"}
	}
	it := w.work(t, t.Context(), KindDeep, binaryPayload{MD5: testMD5})
	if it.State != store.StateFailed || !strings.Contains(it.LastError, "upload refused (signed)") {
		t.Errorf("state %s, error %q; want failed with the policy's reason", it.State, it.LastError)
	}
}

func TestRescanWindowAsksForARescanAndCollectsIt(t *testing.T) {
	w := newScanWorld(t, ScannerConfig{RescanWindow: time.Minute})
	fresh := 0
	w.eng.lookup = func(r engine.Request) (engine.Result, error) {
		if r.MaxAge < 0 {
			fresh++
		}
		return engine.Result{Kind: vt.KindFile, Found: true, Object: report(5)}, nil
	}
	w.eng.rescanFn = func(hash string) (engine.Submission, error) {
		return engine.Submission{Analysis: "rescan-1", Mode: engine.Public, Kind: vt.KindFile, Subject: hash, Rescan: true}, nil
	}
	w.eng.collect = func(*engine.Submission) (engine.Collected, error) {
		return engine.Collected{Done: true, Result: engine.Result{Kind: vt.KindFile, Found: true, Object: report(9)}}, nil
	}
	if it := w.work(t, t.Context(), KindBinary, binaryPayload{MD5: testMD5}); it.State != store.StatePending {
		t.Fatalf("state %s (%s), want pending on the rescan", it.State, it.LastError)
	}
	if it := w.again(t, t.Context(), KindBinary, testMD5); it.State != store.StateDone {
		t.Fatalf("state %s (%s), want done after the rescan", it.State, it.LastError)
	}
	if v, _ := w.verdict(t); v.Positives != 9 {
		t.Errorf("verdict %d positives, want the rescan's 9", v.Positives)
	}
}

func TestLegacyPayloadIsCollectedAsASubmission(t *testing.T) {
	w := newScanWorld(t, ScannerConfig{})
	var got engine.Submission
	w.eng.collect = func(s *engine.Submission) (engine.Collected, error) {
		got = *s
		return engine.Collected{Done: true, Result: engine.Result{Kind: vt.KindFile, Found: true, Object: report(2)}}, nil
	}
	since := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	it := w.work(t, t.Context(), KindBinary, binaryPayload{MD5: testMD5, Analysis: "old-analysis", Since: since})
	if it.State != store.StateDone {
		t.Fatalf("state %s (%s)", it.State, it.LastError)
	}
	if got.Analysis != "old-analysis" || got.Mode != engine.Public || !got.Since.Equal(since) || got.Subject != strings.ToLower(testMD5) {
		t.Errorf("collected %+v, want the earlier version's analysis", got)
	}
}

func TestFailuresPickTheirOutcome(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantState string
		paused    bool
	}{
		{"quota spent", &engine.QuotaExhaustedError{Window: "day", ResetAt: time.Now().Add(time.Hour)}, store.StateRetry, false},
		{"transient", fmt.Errorf("x: %w", vt.ErrTransient), store.StateRetry, false},
		{"bad key pauses the queue", fmt.Errorf("x: %w", vt.ErrAuth), store.StateQueued, true},
		{"bad request", fmt.Errorf("x: %w", vt.ErrBadRequest), store.StateFailed, false},
		{"Cb refuses the token", fmt.Errorf("x: %w", ErrCbAuth), store.StateQueued, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newScanWorld(t, ScannerConfig{})
			w.eng.lookup = func(engine.Request) (engine.Result, error) { return engine.Result{}, tc.err }
			it := w.work(t, t.Context(), KindBinary, binaryPayload{MD5: testMD5})
			if it.State != tc.wantState {
				t.Errorf("state %s (%s), want %s", it.State, it.LastError, tc.wantState)
			}
			ps, _ := w.st.Paused(t.Context())
			if ps.Paused != tc.paused {
				t.Errorf("queue paused %v, want %v", ps.Paused, tc.paused)
			}
		})
	}
}

func TestShutdownDuringALookupHandsTheItemBack(t *testing.T) {
	w := newScanWorld(t, ScannerConfig{})
	ctx, cancel := context.WithCancel(t.Context())
	w.eng.lookup = func(engine.Request) (engine.Result, error) {
		cancel()
		return engine.Result{}, fmt.Errorf("interrupted: %w", context.Canceled)
	}
	it := w.work(t, ctx, KindBinary, binaryPayload{MD5: testMD5})
	if it.State != store.StateQueued || it.Attempts != 0 {
		t.Errorf("state %s attempts %d, want queued and uncounted", it.State, it.Attempts)
	}
	if _, ok := w.verdict(t); ok {
		t.Errorf("a verdict was stored for an interrupted lookup")
	}
}

// failingResults is the store with verdict writes failing.
type failingResults struct{ *store.Store }

func (failingResults) PutResult(context.Context, string, string, []byte) (bool, error) {
	return false, fmt.Errorf("disk full")
}

func TestAVerdictThatCannotBeSavedDoesNotFinishTheItem(t *testing.T) {
	for _, found := range []bool{false, true} {
		t.Run(fmt.Sprint("found=", found), func(t *testing.T) {
			w := newScanWorld(t, ScannerConfig{})
			w.scan.st = failingResults{w.st}
			w.eng.lookup = func(engine.Request) (engine.Result, error) {
				if found {
					return engine.Result{Kind: vt.KindFile, Found: true, Object: report(4)}, nil
				}
				return engine.Result{Kind: vt.KindFile}, nil
			}
			it := w.work(t, t.Context(), KindBinary, binaryPayload{MD5: testMD5})
			if it.State != store.StateRetry || !strings.Contains(it.LastError, "disk full") {
				t.Errorf("state %s (%s): a verdict that was never written must not finish the item", it.State, it.LastError)
			}
		})
	}
}
