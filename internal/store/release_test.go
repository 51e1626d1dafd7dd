package store

import (
	"testing"
	"time"
)

func TestReleaseOwned(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn)
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			mustEnqueue(t, s, NewItem{Kind: "k", Key: k})
		}
		mine, err := s.Claim(ctx, "host/cb/quick-1", []string{"k"}, 3, time.Hour)
		if err != nil || len(mine) != 3 {
			t.Fatalf("Claim = %v, %v", mine, err)
		}
		// An owner whose name starts with the same text must keep its items.
		other, err := s.Claim(ctx, "host/cb/quick-10", []string{"k"}, 1, time.Hour)
		if err != nil || len(other) != 1 {
			t.Fatalf("Claim = %v, %v", other, err)
		}
		n, err := s.ReleaseOwned(ctx, "host/cb/quick-1", []int64{mine[0].ID})
		if n != 2 || err != nil {
			t.Fatalf("ReleaseOwned = %d, %v; want the 2 items not kept", n, err)
		}
		if err := s.ExtendLease(ctx, mine[0].ID, "host/cb/quick-1", time.Hour); err != nil {
			t.Errorf("the kept item lost its lease: %v", err)
		}
		if err := s.ExtendLease(ctx, other[0].ID, "host/cb/quick-10", time.Hour); err != nil {
			t.Errorf("another owner's item lost its lease: %v", err)
		}
		again, err := s.Claim(ctx, "host/cb/quick-2", []string{"k"}, 5, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]bool{}
		for _, it := range again {
			got[it.ID] = true
			if it.Attempts != 0 {
				t.Errorf("released item %s has %d attempts, want 0", it.Key, it.Attempts)
			}
		}
		// The two released and the one never claimed.
		if len(again) != 3 || !got[mine[1].ID] || !got[mine[2].ID] {
			t.Errorf("after ReleaseOwned, Claim = %d items %v; want the 2 released and the last queued", len(again), got)
		}
		if _, err := s.ReleaseOwned(ctx, "", nil); err == nil {
			t.Error("an empty owner was accepted")
		}
	})
}
