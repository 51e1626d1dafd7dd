package store

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vtconnector/vtconnector/internal/engine"
	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestCacheRoundTrip(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn)
		at := time.Date(2026, 3, 14, 12, 0, 0, 123456789, time.UTC)
		found := engine.Entry{
			Kind: vt.KindFile, ID: "44d88612fea8a8f36de82e1278abb02f", Found: true,
			Data:      json.RawMessage(`{"id":"44d88612fea8a8f36de82e1278abb02f","type":"file","attributes":{"names":["eicar.com","\u00e9t\u00e9"],"size":68}}`),
			FetchedAt: at,
		}
		notFound := engine.Entry{Kind: vt.KindDomain, ID: "nowhere.example", FetchedAt: at}
		sameIDOtherKind := engine.Entry{Kind: vt.KindURL, ID: found.ID, Found: true, Data: json.RawMessage(`{}`), FetchedAt: at}
		for _, e := range []engine.Entry{found, notFound, sameIDOtherKind} {
			if err := s.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []engine.Entry{found, notFound, sameIDOtherKind} {
			got, ok, err := s.Get(ctx, want.Kind, want.ID)
			if err != nil || !ok {
				t.Fatalf("Get(%s, %s) = %v, %v", want.Kind, want.ID, ok, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Get(%s, %s) (-want +got):\n%s", want.Kind, want.ID, diff)
			}
		}
		if _, ok, err := s.Get(ctx, vt.KindIP, "192.0.2.1"); ok || err != nil {
			t.Errorf("Get of an unknown object = %v, %v; want false, nil", ok, err)
		}

		// A newer answer replaces the entry; an older one does not.
		newer := found
		newer.Found, newer.Data, newer.FetchedAt = false, nil, at.Add(time.Hour)
		older := found
		older.Data, older.FetchedAt = json.RawMessage(`{"stale":true}`), at.Add(-time.Hour)
		for _, e := range []engine.Entry{newer, older} {
			if err := s.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got, _, err := s.Get(ctx, found.Kind, found.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(newer, got); diff != "" {
			t.Errorf("after a newer and an older Put (-want +got):\n%s", diff)
		}
		if err := s.Put(ctx, engine.Entry{Kind: vt.KindFile}); err == nil {
			t.Error("Put without an id succeeded")
		}
	})
}

func TestCachePurgeAndStats(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn)
		t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		for i, e := range []engine.Entry{
			{Kind: vt.KindFile, ID: "a", Found: true, Data: json.RawMessage(`{}`)},
			{Kind: vt.KindFile, ID: "b"},
			{Kind: vt.KindIP, ID: "192.0.2.1", Found: true, Data: json.RawMessage(`{}`)},
			{Kind: vt.KindDomain, ID: "example.com", Found: true, Data: json.RawMessage(`{}`)},
		} {
			e.FetchedAt = t0.Add(time.Duration(i) * 24 * time.Hour)
			if err := s.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		st, err := s.CacheStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := CacheStats{
			Entries: 4, Found: 3, NotFound: 1,
			ByKind: map[vt.Kind]int64{vt.KindFile: 2, vt.KindIP: 1, vt.KindDomain: 1},
			Oldest: t0, Newest: t0.Add(72 * time.Hour),
		}
		if diff := cmp.Diff(want, st); diff != "" {
			t.Errorf("CacheStats (-want +got):\n%s", diff)
		}
		n, err := s.PurgeCache(ctx, t0.Add(48*time.Hour))
		if err != nil || n != 2 {
			t.Errorf("PurgeCache = %d, %v; want 2", n, err)
		}
		for id, kept := range map[string]bool{"a": false, "b": false} {
			if _, ok, _ := s.Get(ctx, vt.KindFile, id); ok != kept {
				t.Errorf("file %s kept = %v, want %v", id, ok, kept)
			}
		}
		if _, ok, _ := s.Get(ctx, vt.KindDomain, "example.com"); !ok {
			t.Error("the newest entry was purged")
		}
		st, err = s.CacheStats(ctx)
		if err != nil || st.Entries != 2 || st.Oldest != t0.Add(48*time.Hour) {
			t.Errorf("CacheStats after purge = %+v, %v", st, err)
		}
	})
}

// The store is a drop-in cache for the engine.
func TestCacheServesTheEngine(t *testing.T) {
	t.Parallel()
	s := openStore(t, ":memory:")
	var c engine.Cache = s
	e := engine.Entry{Kind: vt.KindFile, ID: "x", Found: true, Data: json.RawMessage(`{"a":1}`), FetchedAt: time.Now().UTC()}
	if err := c.Put(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	got, ok, err := c.Get(t.Context(), e.Kind, e.ID)
	if err != nil || !ok || !got.FetchedAt.Equal(e.FetchedAt) {
		t.Errorf("Get = %+v, %v, %v", got, ok, err)
	}
}
