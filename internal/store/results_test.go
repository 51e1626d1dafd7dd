package store

import (
	"fmt"
	"slices"
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
		page, err := s.ListResultsByKey(ctx, "cb", "B", false, 3)
		if err != nil || len(page) != 3 || page[0].Key != "K0" || page[2].Key != "K2" {
			t.Errorf("list after B = %+v err %v; want K0..K2 (key order, namespace kept apart)", page, err)
		}
		if n, err := s.CountResults(ctx, "cb"); n != 6 || err != nil {
			t.Errorf("count = %d, %v; want 6", n, err)
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
		if ok, err := s.DeleteResult(ctx, "cb", "B"); ok || err != nil {
			t.Errorf("delete again: %v %v", ok, err)
		}
		for ns, want := range map[string]int64{"cb": 5, "other": 1, "none": 0} {
			if n, err := s.CountResults(ctx, ns); n != want || err != nil {
				t.Errorf("count %s after a delete = %d, %v; want %d", ns, n, err, want)
			}
		}
		if _, err := s.PutResult(ctx, "", "k", nil); err == nil {
			t.Errorf("empty namespace accepted")
		}
	})
}

// TestResultsByKey pages through results by key, forward and back, across
// page boundaries and from both ends, with keys that sort in byte order.
func TestResultsByKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		s := openStore(t, dsn)
		ctx := t.Context()
		var keys []string
		for i := range 23 {
			k := fmt.Sprintf("%032X", i*0x1111)
			keys = append(keys, k)
			if _, err := s.PutResult(ctx, "cb", k, []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.PutResult(ctx, "zz", "A", []byte("other namespace")); err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		keysOf := func(rs []Result) []string {
			var out []string
			for _, r := range rs {
				out = append(out, r.Key)
			}
			return out
		}
		// Forward from the start, page by page, then back from the end.
		var fwd []string
		for from := ""; ; {
			rs, err := s.ListResultsByKey(ctx, "cb", from, false, 5)
			if err != nil {
				t.Fatal(err)
			}
			fwd = append(fwd, keysOf(rs)...)
			if len(rs) < 5 {
				break
			}
			from = rs[len(rs)-1].Key
		}
		var back []string
		for from := ""; ; {
			rs, err := s.ListResultsByKey(ctx, "cb", from, true, 5)
			if err != nil {
				t.Fatal(err)
			}
			back = append(keysOf(rs), back...)
			if len(rs) < 5 {
				break
			}
			from = rs[0].Key
		}
		if !slices.Equal(fwd, keys) || !slices.Equal(back, keys) {
			t.Errorf("forward %v\nback %v\nwant %v", fwd, back, keys)
		}
		// From a key that is not there: the neighbours of where it would be.
		rs, err := s.ListResultsByKey(ctx, "cb", keys[4]+"0", false, 2)
		if err != nil || !slices.Equal(keysOf(rs), keys[5:7]) {
			t.Errorf("after a missing key: %v %v; want %v", keysOf(rs), err, keys[5:7])
		}
		rs, err = s.ListResultsByKey(ctx, "cb", keys[4]+"0", true, 2)
		if err != nil || !slices.Equal(keysOf(rs), keys[3:5]) {
			t.Errorf("before a missing key: %v %v; want %v", keysOf(rs), err, keys[3:5])
		}
		if _, err := s.ListResultsByKey(ctx, "cb", "", false, 0); err == nil {
			t.Error("limit 0 accepted")
		}
	})
}
