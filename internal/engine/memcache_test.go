package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/vt"
)

func TestMemCacheBoundedLRU(t *testing.T) {
	ctx := t.Context()
	obj := func(i int) Entry {
		id := fmt.Sprintf("%064x", i)
		return Entry{Kind: vt.KindFile, ID: id, Found: true, FetchedAt: time.Unix(1, 0),
			Object: &vt.Object{Type: "file", ID: id, Attributes: vt.Attributes{SHA256: id, MeaningfulName: "x.exe", LastAnalysisStats: &vt.Stats{Malicious: i}}}}
	}
	one := entrySize("file:"+obj(0).ID, obj(0))
	c := NewMemCacheSized(10 * one)
	for i := range 10 {
		if err := c.Put(ctx, obj(i)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 10 {
		t.Fatalf("%d entries, want 10 (the bound holds 10)", c.Len())
	}
	// Entry 0 is used, so 1 is now the least recently used: the next Put
	// drops it.
	if _, ok, _ := c.Get(ctx, vt.KindFile, obj(0).ID); !ok {
		t.Fatal("entry 0 missing")
	}
	if err := c.Put(ctx, obj(10)); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c.Get(ctx, vt.KindFile, obj(1).ID); ok {
		t.Error("entry 1 (least recently used) kept")
	}
	for _, i := range []int{0, 2, 9, 10} {
		e, ok, _ := c.Get(ctx, vt.KindFile, obj(i).ID)
		if !ok || e.Object.Attributes.LastAnalysisStats.Malicious != i {
			t.Errorf("entry %d: %v %+v", i, ok, e)
		}
	}
	// Replacing an entry does not count it twice.
	for range 5 {
		if err := c.Put(ctx, obj(10)); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() != 10 || c.Bytes() > 10*one {
		t.Errorf("%d entries, %d bytes; want 10 within %d", c.Len(), c.Bytes(), 10*one)
	}
	// Many more entries: the bound holds.
	for i := range 10_000 {
		_ = c.Put(ctx, obj(100+i))
	}
	if c.Len() > 10 || c.Bytes() > 10*one {
		t.Errorf("%d entries, %d bytes after 10,000 Puts; want ≤ 10 within %d", c.Len(), c.Bytes(), 10*one)
	}
}

func TestMemCacheKeepsAnEntryLargerThanItsBound(t *testing.T) {
	c := NewMemCacheSized(1)
	big := Entry{Kind: vt.KindFile, ID: "a", Found: true, Data: make([]byte, 1<<20)}
	_ = c.Put(t.Context(), big)
	if _, ok, _ := c.Get(t.Context(), vt.KindFile, "a"); !ok {
		t.Error("the only entry was dropped")
	}
	_ = c.Put(t.Context(), Entry{Kind: vt.KindFile, ID: "b"})
	if _, ok, _ := c.Get(t.Context(), vt.KindFile, "a"); ok || c.Len() != 1 {
		t.Errorf("older entry kept over the bound (%d entries)", c.Len())
	}
}
