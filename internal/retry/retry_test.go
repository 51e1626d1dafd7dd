package retry

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoffDoublesUpToMax(t *testing.T) {
	b := Backoff{First: time.Second, Max: 5 * time.Second}
	var got []time.Duration
	d := time.Duration(0)
	for range 5 {
		d = b.Next(d)
		got = append(got, d)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits %v, want %v", got, want)
		}
		if n := b.Nth(i + 1); n != want[i] {
			t.Errorf("Nth(%d) = %s, want %s", i+1, n, want[i])
		}
	}
	if d := (Backoff{}).Next(0); d != time.Second {
		t.Errorf("default first wait %s, want 1s", d)
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		began := time.Now()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Sleep = %v, want the context's error", err)
		}
		if took := time.Since(began); took != time.Second {
			t.Errorf("slept %s, want 1s", took)
		}
		if err := Sleep(t.Context(), time.Minute); err != nil {
			t.Errorf("Sleep = %v", err)
		}
	})
}

func TestUntilRetriesUntilSuccessOrAFinalError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		final := errors.New("final")
		n := 0
		var waits []time.Duration
		err := Until(t.Context(), Backoff{First: time.Second, Max: 3 * time.Second}, func() error {
			n++
			if n < 4 {
				return errors.New("again")
			}
			return nil
		}, nil, func(_ error, w time.Duration) { waits = append(waits, w) })
		if err != nil || n != 4 || len(waits) != 3 || waits[2] != 3*time.Second {
			t.Errorf("err %v after %d attempts, waits %v", err, n, waits)
		}
		n = 0
		err = Until(t.Context(), Backoff{}, func() error { n++; return final }, func(err error) bool { return errors.Is(err, final) }, nil)
		if !errors.Is(err, final) || n != 1 {
			t.Errorf("a final error was retried: %v after %d attempts", err, n)
		}
	})
}
