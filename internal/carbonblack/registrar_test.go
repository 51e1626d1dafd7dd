package carbonblack

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	fakecb "github.com/vtconnector/vtconnector/internal/fake/carbonblack"
)

// feedDoc serves a valid feed with one report, as our feed server would.
func feedDoc(t *testing.T) *httptest.Server {
	t.Helper()
	cache := NewFeedCache()
	if err := cache.Render(DefaultFeedInfo(), BuildReports([]Verdict{{MD5: mdDetected, Found: true, Positives: 3, Total: 60,
		UpdatedAt: time.Unix(1_700_000_000, 0)}}, FeedOptions{})); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(cache.Current().Body())
	}))
	t.Cleanup(ts.Close)
	return ts
}

func cbSim(t *testing.T, cfg fakecb.Config) (*fakecb.Server, *Client) {
	t.Helper()
	cfg.Token = "tok"
	sim := fakecb.New(cfg)
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	c, err := NewClient(ts.URL, "tok", false, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// seedOriginal registers the feed as the original connector and an
// administrator left it.
func seedOriginal(sim *fakecb.Server, url string, enabled bool) int {
	return sim.SeedFeed(fakecb.Feed{Name: FeedName, DisplayName: "VirusTotal (renamed by the admin)", FeedURL: url,
		Enabled: enabled, ProviderRating: 4, Category: "Connectors", Summary: "s", TechData: "t", ProviderURL: "http://www.virustotal.com/"})
}

func TestRegistrarRespectsTheConsole(t *testing.T) {
	for _, partial := range []bool{false, true} {
		name := "partial PUT accepted"
		if partial {
			name = "partial PUT rejected"
		}
		t.Run(name, func(t *testing.T) {
			doc := feedDoc(t)
			sim, c := cbSim(t, fakecb.Config{RejectPartialPUT: partial})
			id := seedOriginal(sim, doc.URL+"/old.json", true)
			reg := NewRegistrar(c, RegistrarConfig{FeedURL: doc.URL + "/feed.json", Register: true, UseProxy: true,
				Manage: FeedSettings{URL: true}}, slog.New(slog.DiscardHandler))
			if err := reg.Ensure(t.Context()); err != nil {
				t.Fatal(err)
			}
			f := sim.Feeds()[0]
			if f.ID != id || f.FeedURL != doc.URL+"/feed.json" {
				t.Errorf("feed %d url %q: want the configured URL set on feed %d", f.ID, f.FeedURL, id)
			}
			if f.UseProxy {
				t.Error("use_proxy changed although connector.conf does not set feed_use_proxy")
			}
			if f.DisplayName != "VirusTotal (renamed by the admin)" || f.ProviderRating != 4 || !f.Enabled {
				t.Errorf("console settings lost: %+v", f)
			}
		})
	}
}

func TestRegistrarLeavesAUnmanagedFeedAlone(t *testing.T) {
	doc := feedDoc(t)
	sim, c := cbSim(t, fakecb.Config{})
	seedOriginal(sim, doc.URL+"/old.json", true)
	reg := NewRegistrar(c, RegistrarConfig{FeedURL: doc.URL + "/feed.json", Register: true, UseProxy: true, ValidateServerCert: true},
		slog.New(slog.DiscardHandler))
	if err := reg.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := sim.Stats().ByEndpoint["PUT /api/v1/feed/{id}"]; n != 0 {
		t.Errorf("%d PUTs of a feed whose settings connector.conf does not set", n)
	}
}

func TestRegistrarLeavesADisabledFeedDisabled(t *testing.T) {
	doc := feedDoc(t)
	sim, c := cbSim(t, fakecb.Config{})
	id := seedOriginal(sim, doc.URL+"/feed.json", false)
	var (
		mu     sync.Mutex
		states []bool
	)
	reg := NewRegistrar(c, RegistrarConfig{FeedURL: doc.URL + "/feed.json", Register: true, FullSyncAtStart: true,
		Manage:    FeedSettings{URL: true, UseProxy: true, ValidateServerCert: true, Auth: true},
		SyncEvery: time.Hour, OnDisabled: func(d bool) { mu.Lock(); states = append(states, d); mu.Unlock() }},
		slog.New(slog.DiscardHandler))
	ctx := t.Context()
	if err := reg.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	reg.MarkDirty(true)
	reg.syncNow(ctx)
	f := sim.Feeds()[0]
	if f.Enabled || !reg.Disabled() {
		t.Fatalf("feed enabled=%v, registrar disabled=%v: want it left disabled", f.Enabled, reg.Disabled())
	}
	if st := sim.Stats(); st.Syncs+st.SyncFailures != 0 || st.ByEndpoint["POST /api/v1/feed/{id}/synchronize"] != 0 {
		t.Errorf("a disabled feed was asked to sync: %+v", st.ByEndpoint)
	}
	// The administrator enables it: the next round syncs.
	sim.EditFeed(id, func(f *fakecb.Feed) { f.Enabled = true })
	reg.syncNow(ctx)
	if sim.Stats().Syncs != 1 || reg.Disabled() {
		t.Errorf("after the feed was enabled: %d syncs, disabled=%v", sim.Stats().Syncs, reg.Disabled())
	}
	// Disabled while running: the 409 is noted, no retries hammer it.
	sim.EditFeed(id, func(f *fakecb.Feed) { f.Enabled = false })
	reg.MarkDirty(false)
	reg.syncNow(ctx)
	reg.syncNow(context.Background())
	if got := sim.Stats().ByEndpoint["POST /api/v1/feed/{id}/synchronize"]; got != 2 {
		t.Errorf("%d sync requests, want 2 (one answered 409, none after)", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, false, true}; len(states) != 3 || states[0] != want[0] || states[1] != want[1] || states[2] != want[2] {
		t.Errorf("OnDisabled calls %v, want %v", states, want)
	}
}

func TestRegistrarCreatesAnAbsentFeed(t *testing.T) {
	doc := feedDoc(t)
	sim, c := cbSim(t, fakecb.Config{RejectPartialPUT: true})
	reg := NewRegistrar(c, RegistrarConfig{FeedURL: doc.URL + "/feed.json", Register: true}, slog.New(slog.DiscardHandler))
	if err := reg.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	fs := sim.Feeds()
	if len(fs) != 1 || !fs[0].Enabled || fs[0].FeedURL != doc.URL+"/feed.json" || reg.FeedID() != fs[0].ID {
		t.Errorf("feeds %+v", fs)
	}
}

// midSync calls during while a sync request is in flight, as the
// publisher does when it updates the feed meanwhile.
type midSync struct {
	feedAPI
	during func()
}

func (m midSync) SyncFeed(ctx context.Context, id int, full bool) error {
	m.during()
	return m.feedAPI.SyncFeed(ctx, id, full)
}

// TestRegistrarKeepsChangesMadeDuringASync: a change marked while a sync
// request is in flight may be missing from what the server fetched; it
// is synced at the next round (it was dropped, and Carbon Black kept an
// old feed until some later change), full or not as it asked.
func TestRegistrarKeepsChangesMadeDuringASync(t *testing.T) {
	doc := feedDoc(t)
	sim, c := cbSim(t, fakecb.Config{})
	var reg *Registrar
	var during []bool // what the next sync calls mark: full or not
	api := midSync{feedAPI: c, during: func() {
		if len(during) > 0 {
			reg.MarkDirty(during[0])
			during = during[1:]
		}
	}}
	reg = NewRegistrar(api, RegistrarConfig{FeedURL: doc.URL + "/feed.json", Register: true}, slog.New(slog.DiscardHandler))
	ctx := t.Context()
	if err := reg.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	round := func(wantSyncs, wantFull int) {
		t.Helper()
		reg.syncNow(ctx)
		if st := sim.Stats(); st.Syncs != wantSyncs || st.FullSyncs != wantFull {
			t.Fatalf("%d syncs (%d full), want %d (%d full)", st.Syncs, st.FullSyncs, wantSyncs, wantFull)
		}
	}
	reg.MarkDirty(false)
	during = []bool{false}
	round(1, 0) // a change during it...
	round(2, 0) // ...is synced next
	round(2, 0) // and then nothing is left
	reg.MarkDirty(true)
	during = []bool{false}
	round(3, 1) // full; an incremental change during it...
	round(4, 1) // ...is synced incrementally
	reg.MarkDirty(false)
	during = []bool{true}
	round(5, 1) // incremental; a withdrawal during it...
	round(6, 2) // ...is synced fully
	round(6, 2)
}
