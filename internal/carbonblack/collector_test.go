package carbonblack

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
	"github.com/vtconnector/vtconnector/internal/store"
)

// handlerTransport serves requests with an in-process handler.
type handlerTransport struct {
	h     http.Handler
	mu    sync.Mutex
	after func(r *http.Request) // called after each request
}

func (t *handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	t.mu.Lock()
	f := t.after
	t.mu.Unlock()
	if f != nil {
		f(r)
	}
	return rec.Result(), nil
}

func newCollectorWorld(t *testing.T, pageSize int) (*fakecb.Server, *Collector, *store.Store, *handlerTransport) {
	t.Helper()
	sim := fakecb.New(fakecb.Config{Token: "tok"})
	tr := &handlerTransport{h: sim}
	cb, err := NewClient("http://cb.sim", "tok", true, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cb.WithHTTPClient(&http.Client{Transport: tr})
	st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The live poller starts at the first binaries' time: the walks below
	// cross from the backfill into the live poller's range.
	now := func() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }
	c := NewCollector(cb, st, CollectorConfig{FeedName: FeedName, MaxBinarySize: 10 << 20, PageSize: pageSize, Now: now}, slog.New(slog.DiscardHandler))
	return sim, c, st, tr
}

func queued(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	qs, err := st.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range qs.Counts {
		out[c.State] += int(c.Count)
	}
	return out
}

func TestCollectorWalksEverythingOnceAcrossPagesAndPasses(t *testing.T) {
	sim, c, st, tr := newCollectorWorld(t, 7)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	// 12 binaries in the same second (more than a page), then 20 more.
	for i := range 12 {
		sim.AddBinary(fakecb.Binary{Content: []byte{byte(i), 1, 2, 3}, ServerAdded: base.Add(time.Duration(i) * time.Millisecond)})
	}
	sim.AddSyntheticBinaries(20, base.Add(time.Second), 30*time.Second)

	// Binaries appear while the first pass pages through.
	added := false
	tr.after = func(r *http.Request) {
		if !added && strings.HasPrefix(r.URL.Path, "/api/v1/binary") {
			added = true
			sim.AddSyntheticBinaries(5, base.Add(time.Hour), time.Second)
		}
	}
	n, err := c.Pass(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != 37 {
		t.Errorf("first pass queued %d binaries, want all 37 (12 in one second, 20, 5 added mid-walk)", n)
	}
	if q := queued(t, st)[store.StateQueued]; q != 37 {
		t.Errorf("%d queued items, want 37", q)
	}
	// A second pass finds nothing new; a third after new binaries finds
	// exactly those.
	if n, err := c.Pass(t.Context()); n != 0 || err != nil {
		t.Errorf("second pass queued %d (%v), want 0", n, err)
	}
	sim.AddSyntheticBinaries(3, base.Add(2*time.Hour), time.Millisecond)
	if n, err := c.Pass(t.Context()); n != 3 || err != nil {
		t.Errorf("third pass queued %d (%v), want the 3 new ones", n, err)
	}
	var p position
	v, _, _ := st.GetCursor(t.Context(), collectorCursor)
	if err := json.Unmarshal([]byte(v), &p); err != nil || !p.BackfillDone || !p.LiveMark.Equal(base.Add(2*time.Hour)) {
		t.Errorf("saved position %s (%v); want the backfill done and the live mark at the newest second", v, err)
	}
}

func TestCollectorResumesFromItsSavedPosition(t *testing.T) {
	sim, c, st, _ := newCollectorWorld(t, 10)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sim.AddSyntheticBinaries(10, base, time.Minute)
	if _, err := c.Pass(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A new collector on the same store (a restart) does not walk again.
	cfg := c.cfg
	cfg.Overlap = time.Minute // the look-back re-reads 2 old binaries, within one page
	c2 := NewCollector(c.cb, st, cfg, c.log)
	sim.AddSyntheticBinaries(4, base.Add(time.Hour), time.Minute)
	searches := sim.Stats().Searches
	n, err := c2.Pass(t.Context())
	if n != 4 || err != nil {
		t.Fatalf("restarted collector queued %d (%v), want the 4 new ones", n, err)
	}
	if s := sim.Stats().Searches - searches; s != 1 {
		t.Errorf("restarted collector made %d searches, want 1 (no re-walk)", s)
	}
	if q := queued(t, st)[store.StateQueued]; q != 14 {
		t.Errorf("%d queued items, want 14", q)
	}
}

func TestCollectorQuery(t *testing.T) {
	c := NewCollector(nil, nil, CollectorConfig{FeedName: "VirusTotalConnector", MaxBinarySize: 1000,
		FilterQuery: `is_executable_image:true OR digsig_result:"Unsigned"`}, slog.New(slog.DiscardHandler))
	got := c.Query(time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC), time.Time{})
	// binary_filter_query is appended as the original appended it.
	want := `server_added_timestamp:[2025-01-02T03:04:05 TO *] -alliance_score_virustotalconnector:* orig_mod_len:[1 TO 1000] is_executable_image:true OR digsig_result:"Unsigned"`
	if got != want {
		t.Errorf("query\n got %s\nwant %s", got, want)
	}
	if got := c.Query(time.Time{}, time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)); !strings.HasPrefix(got, "server_added_timestamp:[* TO 2025-01-02T03:04:05] ") {
		t.Errorf("backfill query %s: want an open lower bound", got)
	}
}

func TestCollectorExcludesTaggedAndFilteredBinaries(t *testing.T) {
	sim, c, st, _ := newCollectorWorld(t, 50)
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	sim.AddBinary(fakecb.Binary{Content: make([]byte, 11<<20), ServerAdded: base}) // over max_binary_size
	sim.AddSyntheticBinaries(3, base.Add(time.Minute), time.Minute)
	if n, err := c.Pass(t.Context()); n != 3 || err != nil {
		t.Errorf("queued %d (%v), want 3: the binary over max_binary_size is filtered", n, err)
	}
	_ = st
}
