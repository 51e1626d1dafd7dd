package obs

import (
	"errors"
	"testing"
	"time"
)

func TestMemoReusesOnlySlowReads(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	m := memo[int]{now: func() time.Time { return now }}
	reads := 0
	read := func(cost time.Duration, err error) func() (int, error) {
		return func() (int, error) {
			reads++
			now = now.Add(cost)
			return reads, err
		}
	}

	// Fast reads are never kept.
	if v, _ := m.get(read(time.Millisecond, nil)); v != 1 {
		t.Fatalf("first read = %d, want 1", v)
	}
	if v, _ := m.get(read(time.Millisecond, nil)); v != 2 {
		t.Fatalf("a fast read was reused: got %d, want 2", v)
	}

	// A slow read is kept for memoFactor times its cost...
	if v, _ := m.get(read(100*time.Millisecond, nil)); v != 3 {
		t.Fatalf("slow read = %d, want 3", v)
	}
	now = now.Add(memoFactor*100*time.Millisecond - time.Millisecond)
	if v, _ := m.get(read(time.Millisecond, nil)); v != 3 {
		t.Fatalf("within its validity the slow read was not reused: got %d, want 3", v)
	}
	// ... and read again after.
	now = now.Add(2 * time.Millisecond)
	if v, _ := m.get(read(time.Millisecond, nil)); v != 4 {
		t.Fatalf("after its validity the value was still reused: got %d, want 4", v)
	}

	// A failed read is never kept, even a slow one.
	boom := errors.New("database away")
	if _, err := m.get(read(time.Second, boom)); !errors.Is(err, boom) {
		t.Fatalf("error = %v, want %v", err, boom)
	}
	if v, err := m.get(read(time.Millisecond, nil)); err != nil || v != 6 {
		t.Fatalf("after a failure: %d, %v; want a new read (6)", v, err)
	}
}
