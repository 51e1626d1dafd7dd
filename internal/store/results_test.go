package store

import (
	"fmt"
	"testing"
	"time"
)

func TestResults(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		s := openStore(t, dsn, WithClock(func() time.Time { return now }))
		ctx := t.Context()

		changed, err := s.PutResult(ctx, "cb", "B", []byte(`{"v":1}`))
		if err != nil || !changed {
			t.Fatalf("first put: changed=%v err=%v", changed, err)
		}
		now = now.Add(time.Hour)
		if changed, err := s.PutResult(ctx, "cb", "B", []byte(`{"v":1}`)); err != nil || changed {
			t.Errorf("same value again: changed=%v err=%v; want unchanged", changed, err)
		}
		r, ok, err := s.GetResult(ctx, "cb", "B")
		if err != nil || !ok || string(r.Value) != `{"v":1}` || !r.UpdatedAt.Equal(now.Add(-time.Hour)) {
			t.Errorf("get = %+v %v %v; want the value with its first time kept", r, ok, err)
		}
		if changed, err := s.PutResult(ctx, "cb", "B", []byte(`{"v":2}`)); err != nil || !changed {
			t.Errorf("new value: changed=%v err=%v", changed, err)
		}
		if r, _, _ := s.GetResult(ctx, "cb", "B"); !r.UpdatedAt.Equal(now) {
			t.Errorf("updated_at %s, want %s", r.UpdatedAt, now)
		}
		for i := range 5 {
			if _, err := s.PutResult(ctx, "cb", fmt.Sprintf("K%d", i), []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.PutResult(ctx, "other", "A", []byte("y")); err != nil {
			t.Fatal(err)
		}
		page, total, err := s.ListResults(ctx, "cb", 1, 3)
		if err != nil || total != 6 || len(page) != 3 || page[0].Key != "K0" || page[2].Key != "K2" {
			t.Errorf("list = %+v total %d err %v; want K0..K2 of 6 (key order, namespace kept apart)", page, total, err)
		}
		now = now.Add(time.Hour)
		if _, err := s.PutResult(ctx, "cb", "K3", []byte("changed")); err != nil {
			t.Fatal(err)
		}
		recent, err := s.RecentResults(ctx, "cb", 2)
		if err != nil || len(recent) != 2 || recent[0].Key != "K3" {
			t.Errorf("recent = %+v, %v; want K3 (changed last) first", recent, err)
		}
		if ok, err := s.DeleteResult(ctx, "cb", "B"); !ok || err != nil {
			t.Errorf("delete: %v %v", ok, err)
		}
		if _, ok, _ := s.GetResult(ctx, "cb", "B"); ok {
			t.Errorf("deleted result still there")
		}
		if _, err := s.PutResult(ctx, "", "k", nil); err == nil {
			t.Errorf("empty namespace accepted")
		}
	})
}
