package store

import (
	"fmt"
	"testing"
	"time"
)

// TestListResultsChanged: walking from the start reads every result once,
// in the order they changed, page by page; walking on from the last
// position reads only what changed since, equal times included.
func TestListResultsChanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dsn string) {
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		s := openStore(t, dsn, WithClock(func() time.Time { return now }))
		ctx := t.Context()
		put := func(key, v string) {
			t.Helper()
			if _, err := s.PutResult(ctx, "cb", key, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 7 { // K0..K3 at one time, K4..K6 a second later
			if i == 4 {
				now = now.Add(time.Second)
			}
			put(fmt.Sprintf("K%d", i), "x")
		}
		if _, err := s.PutResult(ctx, "other", "A", []byte("y")); err != nil {
			t.Fatal(err)
		}
		var (
			got []string
			pos ResultsAfter
		)
		for range 10 {
			rs, next, err := s.ListResultsChanged(ctx, "cb", pos, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				got = append(got, r.Key)
			}
			pos = next
			if len(rs) < 3 {
				break
			}
		}
		if fmt.Sprint(got) != "[K0 K1 K2 K3 K4 K5 K6]" {
			t.Fatalf("walk from the start: %v", got)
		}
		now = now.Add(time.Second)
		put("K1", "changed")
		put("K9", "new")
		rs, _, err := s.ListResultsChanged(ctx, "cb", pos, 10)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, r := range rs {
			got = append(got, r.Key)
		}
		if fmt.Sprint(got) != "[K1 K9]" {
			t.Errorf("walk on: %v, want [K1 K9] (only what changed since)", got)
		}
		if _, _, err := s.ListResultsChanged(ctx, "cb", ResultsAfter{}, 0); err == nil {
			t.Error("limit 0 accepted")
		}
	})
}
