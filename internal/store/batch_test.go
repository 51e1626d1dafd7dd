package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestCompleteManyRecordsEachOutcome: one call records every outcome as
// Complete would; a completion whose owner lost the lease gets
// ErrLeaseLost and changes nothing, the others are recorded all the same.
func TestCompleteManyRecordsEachOutcome(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, dsn string) {
		ctx := t.Context()
		s := openStore(t, dsn)
		for i := range 4 {
			mustEnqueue(t, s, NewItem{Kind: "k", Key: fmt.Sprint(i)})
		}
		its, err := s.Claim(ctx, "w1", []string{"k"}, 4, time.Minute)
		if err != nil || len(its) != 4 {
			t.Fatalf("Claim = %d items, %v", len(its), err)
		}
		before := mustGet(t, s, "k", its[2].Key)
		errs, err := s.CompleteMany(ctx, []Completion{
			{its[3].ID, "w1", Done([]byte(`{"v":3}`))},
			{its[0].ID, "w1", NotFound()},
			{its[2].ID, "w2", Done(nil)}, // not w2's
			{its[1].ID, "w1", Transient(errors.New("503"))},
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []error{nil, nil, ErrLeaseLost, nil} {
			if !errors.Is(errs[i], want) || (want == nil) != (errs[i] == nil) {
				t.Errorf("errs[%d] = %v, want %v", i, errs[i], want)
			}
		}
		for key, want := range map[string]string{its[3].Key: StateDone, its[0].Key: StateNotFound, its[1].Key: StateRetry, its[2].Key: StateLeased} {
			if got := mustGet(t, s, "k", key); got.State != want {
				t.Errorf("item %s: state %s, want %s", key, got.State, want)
			}
		}
		if got := mustGet(t, s, "k", its[3].Key); string(got.Result) != `{"v":3}` {
			t.Errorf("result %s", got.Result)
		}
		if got := mustGet(t, s, "k", its[1].Key); got.Attempts != 1 {
			t.Errorf("transient outcome: %d attempts, want 1", got.Attempts)
		}
		if after := mustGet(t, s, "k", its[2].Key); after.UpdatedAt != before.UpdatedAt || after.LeaseOwner != "w1" {
			t.Errorf("an item whose lease another holds changed: %+v", after)
		}
		if _, err := s.CompleteMany(ctx, []Completion{{its[2].ID, "w1", Outcome{}}}); err == nil {
			t.Error("an invalid outcome was accepted")
		}
	})
}
