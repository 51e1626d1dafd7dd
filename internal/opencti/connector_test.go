package opencti

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/config"
	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/stix"
	"github.com/vtconnector/vtconnector/internal/store"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// fakePlatform records what the connector tells the platform: the
// message and pending-analysis loops tested without HTTP or RabbitMQ.
type fakePlatform struct {
	mu        sync.Mutex
	received  []string
	processed []workEnd
	pushed    [][]byte
	files     map[string][]byte // artifact id -> attached file
	markings  map[string]stix.Marking
	steps     []PlaybookStep
	entities  map[string]map[string]any // what EntityStix reads
	works     map[string]WorkProgress   // what WorkProgress reads
	announced map[string]int            // expectations added, by work
	readErr   error                     // what WorkProgress fails with
}

type workEnd struct {
	work, msg string
	inError   bool
}

func (p *fakePlatform) Version(context.Context) (string, error) { return "6.8.0", nil }
func (p *fakePlatform) Register(context.Context, RegisterInput, string) (*Registration, error) {
	return &Registration{}, nil
}
func (p *fakePlatform) Ping(context.Context, string, string, string) (*string, error) {
	return nil, nil
}
func (p *fakePlatform) WorkToReceived(_ context.Context, work, msg string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received = append(p.received, work+": "+msg)
	return nil
}
func (p *fakePlatform) WorkToProcessed(_ context.Context, work, msg string, inError bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.processed = append(p.processed, workEnd{work, msg, inError})
	return nil
}
func (p *fakePlatform) WorkAddExpectations(_ context.Context, work string, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.announced == nil {
		p.announced = map[string]int{}
	}
	p.announced[work] += n
	return nil
}
func (p *fakePlatform) WorkPing(context.Context, string) error { return nil }
func (p *fakePlatform) WorkProgress(_ context.Context, work string) (WorkProgress, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readErr != nil {
		return WorkProgress{}, p.readErr
	}
	wp, ok := p.works[work]
	wp.Found = wp.Found || ok
	return wp, nil
}
func (p *fakePlatform) PushBundle(_ context.Context, _ string, bundle []byte, _ string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pushed = append(p.pushed, bundle)
	return nil
}
func (p *fakePlatform) ArtifactFiles(_ context.Context, id string) ([]ImportFile, error) {
	if _, ok := p.files[id]; !ok {
		return nil, nil
	}
	return []ImportFile{{ID: "file-" + id, Name: "invoice.exe"}}, nil
}
func (p *fakePlatform) MarkingDefinition(_ context.Context, id string) (*stix.Marking, error) {
	if m, ok := p.markings[id]; ok {
		return &m, nil
	}
	return nil, nil
}
func (p *fakePlatform) PlaybookStepExecution(_ context.Context, s PlaybookStep) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.steps = append(p.steps, s)
	return nil
}
func (p *fakePlatform) EntityStix(_ context.Context, id string) ([]byte, error) {
	if e, ok := p.entities[id]; ok {
		return json.Marshal(e)
	}
	return nil, fmt.Errorf("no entity %s", id)
}
func (p *fakePlatform) DownloadFile(_ context.Context, fileID string, w io.Writer, _ int64) (int64, error) {
	n, err := io.Copy(w, bytes.NewReader(p.files[strings.TrimPrefix(fileID, "file-")]))
	return n, err
}

// fakeVerdicts is the engine as the connector sees it.
type fakeVerdicts struct {
	mu       sync.Mutex
	calls    []string
	lookup   func(r engine.Request) (engine.Result, error)
	uploaded []engine.Upload
	collect  func(s *engine.Submission) (engine.Collected, error)
}

func (f *fakeVerdicts) Lookup(_ context.Context, r engine.Request) (engine.Result, error) {
	f.mu.Lock()
	f.calls = append(f.calls, "lookup "+r.ID)
	f.mu.Unlock()
	return f.lookup(r)
}
func (f *fakeVerdicts) Upload(_ context.Context, u engine.Upload) (engine.Submission, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "upload "+filepath.Base(u.Path))
	f.uploaded = append(f.uploaded, u)
	if u.Facts.TLP != nil && *u.Facts.TLP > stix.TLPClear {
		return engine.Submission{}, &engine.UploadRefusedError{Reason: engine.RefusedTLP, Detail: "marked " + u.Facts.TLP.String()}
	}
	return engine.Submission{Analysis: "an-1", Mode: u.Mode, Kind: vt.KindFile, Subject: u.Hash, Since: time.Now()}, nil
}
func (f *fakeVerdicts) SubmitURL(_ context.Context, u string, mode engine.Mode, _ engine.UploadFacts, _ engine.CallOptions) (engine.Submission, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "submit "+u)
	return engine.Submission{Analysis: "u-1", Mode: mode, Kind: vt.KindURL, Subject: u, Since: time.Now()}, nil
}
func (f *fakeVerdicts) Collect(_ context.Context, s *engine.Submission, _ engine.CallOptions) (engine.Collected, error) {
	f.mu.Lock()
	f.calls = append(f.calls, "collect "+s.Analysis)
	f.mu.Unlock()
	return f.collect(s)
}
func (f *fakeVerdicts) URLServingIP(_ context.Context, id string, _ engine.CallOptions) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "serving "+id)
	return "203.0.113.80", nil
}

func (f *fakeVerdicts) YARARuleset(context.Context, string, engine.CallOptions) (*vt.Object, error) {
	return nil, fmt.Errorf("no rulesets here: %w", vt.ErrNotFound)
}

type octiWorld struct {
	c   *Connector
	p   *fakePlatform
	eng *fakeVerdicts
	st  *store.Store
}

func newOctiWorld(t testing.TB, env map[string]string) *octiWorld {
	t.Helper()
	base := map[string]string{
		"OPENCTI_URL": "http://opencti.test", "OPENCTI_TOKEN": "octi-token", "CONNECTOR_ID": "5d4e7a4b-0b1c-4a8e-9d7c-3f2a1b0c9e8d",
		"VIRUSTOTAL_TOKEN": "vt-token", "CONNECTOR_QUEUE_PROTOCOL": "api",
		"VTCONNECTOR_DATABASE_URL": filepath.Join(t.TempDir(), "octi.db"),
	}
	for k, v := range env {
		base[k] = v
	}
	cfg, _, err := config.LoadOpenCTI(base, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), cfg.DatabaseURL.Reveal(), store.WithBackoff(time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &octiWorld{p: &fakePlatform{files: map[string][]byte{}}, eng: &fakeVerdicts{}, st: st}
	w.c = newConnector(cfg, Deps{Platform: w.p, Engine: w.eng, Store: st, Log: slog.New(slog.DiscardHandler), Owner: "test",
		Tune: &Tuning{PingEvery: time.Hour, PollEvery: time.Millisecond, WorkPingEvery: time.Hour, RetryMax: time.Millisecond}})
	w.c.reg = &Registration{}
	return w
}

// handle delivers a message as the consume loop does, then works every
// request it parked that is ready, as the pool does; it reports whether
// the message was acknowledged.
func (w *octiWorld) handle(ctx context.Context, body []byte) bool {
	ack := w.c.receive(ctx, body)
	w.drain(ctx)
	return ack
}

// drain works the parked requests that are ready, each once (one parked
// again is left for the next drain).
func (w *octiWorld) drain(ctx context.Context) {
	const owner = "test/requests-0"
	items, err := w.st.Claim(ctx, owner, []string{KindMessage}, 100, time.Minute)
	if err != nil {
		return
	}
	for _, it := range items {
		w.c.messages.Work(ctx, owner, it)
	}
}

// message builds an enrichment request as the platform sends it (the
// STIX entity double-encoded).
func enrichMessage(t *testing.T, work string, entity map[string]any, entityType string) []byte {
	t.Helper()
	e, _ := json.Marshal(entity)
	b, err := json.Marshal(map[string]any{
		"internal": map[string]any{"work_id": work, "applicant_id": nil},
		"event":    map[string]any{"entity_id": entity["id"], "entity_type": entityType, "stix_entity": string(e)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ipReport() *vt.Object {
	return &vt.Object{Type: "ip_address", ID: "198.51.100.7", Raw: json.RawMessage(`{"type":"ip_address","id":"198.51.100.7","attributes":{"last_analysis_stats":{"malicious":3,"suspicious":0,"undetected":50,"harmless":10}}}`),
		Attributes: vt.Attributes{LastAnalysisStats: &vt.Stats{Malicious: 3, Undetected: 50, Harmless: 10}}}
}

func TestMessageIsEnrichedPushedAndReported(t *testing.T) {
	w := newOctiWorld(t, nil)
	w.eng.lookup = func(r engine.Request) (engine.Result, error) {
		return engine.Result{Kind: vt.KindIP, ID: r.ID, Found: true, Object: ipReport()}, nil
	}
	ip := map[string]any{"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a", "value": "198.51.100.7"}
	if !w.handle(t.Context(), enrichMessage(t, "work-1", ip, "IPv4-Addr")) {
		t.Fatal("the message was not acknowledged")
	}
	if len(w.p.pushed) != 1 || !bytes.Contains(w.p.pushed[0], []byte(`"type":"note"`)) {
		t.Fatalf("pushed %d bundles, want one with the VirusTotal note", len(w.p.pushed))
	}
	if len(w.p.processed) != 1 || w.p.processed[0].inError || w.p.processed[0].work != "work-1" {
		t.Errorf("work ends %+v, want work-1 processed without error", w.p.processed)
	}
}

func TestUnreadableMessageIsAcknowledgedAndNothingAsked(t *testing.T) {
	w := newOctiWorld(t, nil)
	if !w.handle(t.Context(), []byte(`{"internal":{"work_id":"w"},"event":`)) {
		t.Error("an unreadable message must be acknowledged (it can never be processed)")
	}
	if len(w.eng.calls) != 0 || len(w.p.pushed) != 0 {
		t.Errorf("calls %v, pushes %d for an unreadable message", w.eng.calls, len(w.p.pushed))
	}
}

func TestTLPAboveTheCeilingIsRefusedBeforeAnyLookup(t *testing.T) {
	w := newOctiWorld(t, map[string]string{"VIRUSTOTAL_MAX_TLP": "TLP:GREEN"})
	ip := map[string]any{"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a", "value": "198.51.100.7",
		"object_marking_refs": []string{stix.TLPRed.MarkingID()}}
	if !w.handle(t.Context(), enrichMessage(t, "work-red", ip, "IPv4-Addr")) {
		t.Fatal("not acknowledged")
	}
	if len(w.eng.calls) != 0 {
		t.Errorf("VirusTotal was asked %v for a TLP:RED entity", w.eng.calls)
	}
	if len(w.p.processed) != 1 || !w.p.processed[0].inError || !strings.Contains(w.p.processed[0].msg, "TLP") {
		t.Errorf("work ends %+v, want an error naming the TLP", w.p.processed)
	}
}

func artifact(markings ...string) map[string]any {
	a := map[string]any{"type": "artifact", "spec_version": "2.1", "id": "artifact--4d2c1b0a-9e8f-5a7b-8c6d-5e4f3a2b1c0d",
		"hashes": map[string]any{"SHA-256": strings.Repeat("cd", 32)}, "x_opencti_id": "art-1"}
	if len(markings) > 0 {
		a["object_marking_refs"] = markings
	}
	return a
}

func TestUnseenArtifactIsUploadedParkedThenFinished(t *testing.T) {
	w := newOctiWorld(t, map[string]string{"VIRUSTOTAL_UPLOAD_MODE": "private"})
	w.p.files["artifact--4d2c1b0a-9e8f-5a7b-8c6d-5e4f3a2b1c0d"] = []byte("MZ payload")
	w.eng.lookup = func(r engine.Request) (engine.Result, error) { return engine.Result{Kind: vt.KindFile, ID: r.ID}, nil }
	if !w.handle(t.Context(), enrichMessage(t, "work-art", artifact(), "Artifact")) {
		t.Fatal("not acknowledged: an upload parked in the store must free the message")
	}
	if len(w.eng.uploaded) != 1 {
		t.Fatalf("uploads %d, want 1 (calls %v)", len(w.eng.uploaded), w.eng.calls)
	}
	if u := w.eng.uploaded[0]; u.Mode != engine.Private || filepath.Base(u.Path) != "invoice.exe" || u.Hash != strings.Repeat("cd", 32) {
		t.Errorf("upload %+v: want private, under the artifact's own name, with its hash", u)
	}
	if len(w.p.processed) != 0 {
		t.Fatalf("the work ended before the analysis: %+v", w.p.processed)
	}
	it, ok, err := w.st.GetItem(t.Context(), KindPending, "work-art")
	if err != nil || !ok || it.State != store.StateQueued {
		t.Fatalf("parked item %+v %v %v", it, ok, err)
	}

	// The pending pool: first poll still running, second poll done.
	polls := 0
	w.eng.collect = func(s *engine.Submission) (engine.Collected, error) {
		polls++
		if s.Analysis != "an-1" || s.Mode != engine.Private {
			t.Errorf("collecting %+v", s)
		}
		if polls == 1 {
			return engine.Collected{NextPoll: time.Now()}, nil
		}
		o := &vt.Object{Type: "private_file", ID: strings.Repeat("cd", 32), Private: true, Raw: json.RawMessage(`{"type":"private_file","id":"` + strings.Repeat("cd", 32) + `","attributes":{}}`),
			Attributes: vt.Attributes{SHA256: strings.Repeat("cd", 32), LastAnalysisStats: &vt.Stats{Malicious: 1, Harmless: 1},
				SandboxVerdicts: map[string]vt.SandboxVerdict{"Zenbox": {Category: "malicious", Confidence: 80, MalwareNames: []string{"Emotet"}}}}}
		return engine.Collected{Done: true, Result: engine.Result{Kind: vt.KindFile, Found: true, Object: o}}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.c.pending.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		it, _, _ := w.st.GetItem(t.Context(), KindPending, "work-art")
		if it.State == store.StateDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the parked analysis was not finished: %+v", it)
		}
		w.c.pending.Wake()
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if polls != 2 {
		t.Errorf("%d polls, want 2", polls)
	}
	if len(w.p.processed) != 1 || w.p.processed[0].inError {
		t.Fatalf("work ends %+v, want work-art processed", w.p.processed)
	}
	if len(w.p.pushed) != 1 || !bytes.Contains(w.p.pushed[0], []byte("private analysis")) {
		t.Errorf("the bundle does not carry the private report's note")
	}
	for _, c := range w.eng.calls {
		if strings.HasPrefix(c, "lookup") && c != "lookup "+strings.Repeat("cd", 32) {
			t.Errorf("unexpected call %q", c)
		}
	}
}

func TestUploadAboveTheUploadTLPIsReportedNotParked(t *testing.T) {
	w := newOctiWorld(t, nil)
	w.p.files["artifact--4d2c1b0a-9e8f-5a7b-8c6d-5e4f3a2b1c0d"] = []byte("MZ payload")
	w.eng.lookup = func(r engine.Request) (engine.Result, error) { return engine.Result{Kind: vt.KindFile, ID: r.ID}, nil }
	if !w.handle(t.Context(), enrichMessage(t, "work-amber", artifact(stix.TLPAmber.MarkingID()), "Artifact")) {
		t.Fatal("not acknowledged")
	}
	if len(w.eng.uploaded) != 1 || w.eng.uploaded[0].Facts.TLP == nil || *w.eng.uploaded[0].Facts.TLP != stix.TLPAmber {
		t.Fatalf("the upload was not asked with the entity's TLP: %+v", w.eng.uploaded)
	}
	if len(w.p.processed) != 1 || !w.p.processed[0].inError || !strings.Contains(w.p.processed[0].msg, "upload refused (tlp)") {
		t.Errorf("work ends %+v, want the refusal's reason", w.p.processed)
	}
	if _, ok, _ := w.st.GetItem(t.Context(), KindPending, "work-amber"); ok {
		t.Errorf("a refused upload was parked")
	}
}

func TestStoppingMidRequestHandsItBackToTheStore(t *testing.T) {
	w := newOctiWorld(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	w.eng.lookup = func(engine.Request) (engine.Result, error) {
		cancel()
		return engine.Result{}, context.Canceled
	}
	ip := map[string]any{"type": "ipv4-addr", "spec_version": "2.1", "id": "ipv4-addr--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a", "value": "198.51.100.7"}
	if !w.handle(ctx, enrichMessage(t, "work-stop", ip, "IPv4-Addr")) {
		t.Error("a parked message was not acknowledged")
	}
	if len(w.p.processed) != 0 {
		t.Errorf("the work was reported: %+v", w.p.processed)
	}
	it, ok, err := w.st.GetItem(t.Context(), KindMessage, "work:work-stop")
	if err != nil || !ok || it.State != store.StateQueued || it.Attempts != 0 {
		t.Errorf("request %+v %v %v: want it handed back, ready, uncounted", it, ok, err)
	}
}

func TestURLNoteShowsTheServingIPWhenAttributesAreIncluded(t *testing.T) {
	for _, include := range []bool{false, true} {
		t.Run(fmt.Sprint("attributes=", include), func(t *testing.T) {
			w := newOctiWorld(t, map[string]string{"VIRUSTOTAL_INCLUDE_ATTRIBUTES_IN_NOTE": fmt.Sprint(include)})
			sha := strings.Repeat("ab", 32)
			w.eng.lookup = func(r engine.Request) (engine.Result, error) {
				o := &vt.Object{Type: "url", ID: sha, Raw: json.RawMessage(`{"type":"url","id":"` + sha + `","attributes":{"last_analysis_stats":{"malicious":1,"harmless":60},"last_final_url":"http://x.example/"}}`),
					Attributes: vt.Attributes{LastAnalysisStats: &vt.Stats{Malicious: 1, Harmless: 60}, LastFinalURL: "http://x.example/"}}
				return engine.Result{Kind: vt.KindURL, ID: r.ID, Found: true, Object: o}, nil
			}
			u := map[string]any{"type": "url", "spec_version": "2.1", "id": "url--1f4f2c8a-6a4b-5d3e-9c2a-1b0c9e8d7f6a", "value": "http://x.example/"}
			if !w.handle(t.Context(), enrichMessage(t, "w-url", u, "Url")) {
				t.Fatal("not acknowledged")
			}
			asked := slices.Contains(w.eng.calls, "serving "+sha)
			shown := len(w.p.pushed) == 1 && bytes.Contains(w.p.pushed[0], []byte("203.0.113.80"))
			if asked != include || shown != include {
				t.Errorf("serving IP asked %v, shown %v; want both %v (one request only when the note shows it)", asked, shown, include)
			}
		})
	}
}
