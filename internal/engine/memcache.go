package engine

import (
	"container/list"
	"context"
	"sync"
	"unsafe"

	"github.com/vtconnector/vtconnector/internal/vt"
)

// DefaultMemCacheBytes bounds a MemCache made by NewMemCache.
const DefaultMemCacheBytes = 16 << 20

// MemCache is an in-memory Cache bounded by an estimate of the bytes its
// entries hold: when a Put goes over the bound, the least recently used
// entries are dropped. It keeps entries as they are given (a caller that
// wants it small gives objects without their JSON, see vt.Client.Lean).
type MemCache struct {
	mu    sync.Mutex
	max   int64
	bytes int64
	m     map[string]*list.Element // of *memEntry
	lru   list.List                // front: most recently used
}

type memEntry struct {
	key  string
	e    Entry
	size int64
}

// NewMemCache returns an empty in-memory cache of DefaultMemCacheBytes.
func NewMemCache() *MemCache { return NewMemCacheSized(DefaultMemCacheBytes) }

// NewMemCacheSized returns an empty in-memory cache that holds about
// maxBytes at most (at least one entry whatever its size).
func NewMemCacheSized(maxBytes int64) *MemCache {
	return &MemCache{max: maxBytes, m: map[string]*list.Element{}}
}

// Get implements Cache.
func (c *MemCache) Get(_ context.Context, kind vt.Kind, id string) (Entry, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[string(kind)+":"+id]
	if !ok {
		return Entry{}, false, nil
	}
	c.lru.MoveToFront(el)
	return el.Value.(*memEntry).e, true, nil
}

// Put implements Cache.
func (c *MemCache) Put(_ context.Context, e Entry) error {
	key := string(e.Kind) + ":" + e.ID
	me := &memEntry{key: key, e: e, size: entrySize(key, e)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		c.bytes -= el.Value.(*memEntry).size
		el.Value = me
		c.lru.MoveToFront(el)
	} else {
		c.m[key] = c.lru.PushFront(me)
	}
	c.bytes += me.size
	for c.bytes > c.max && c.lru.Len() > 1 {
		old := c.lru.Remove(c.lru.Back()).(*memEntry)
		delete(c.m, old.key)
		c.bytes -= old.size
	}
	return nil
}

// Len is the number of entries.
func (c *MemCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Bytes is the estimated size of the entries held.
func (c *MemCache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// entryOverhead is what an entry costs besides its strings and object:
// the map slot, the list element, the memEntry.
const entryOverhead = 160

// entrySize estimates the bytes an entry holds. An object shared by
// several entries (a file under each of its hashes) is counted in each:
// the estimate errs on the safe side.
func entrySize(key string, e Entry) int64 {
	n := int64(entryOverhead+unsafe.Sizeof(memEntry{})) + int64(len(key)+len(e.ID)+len(e.Data))
	if o := e.Object; o != nil {
		a := &o.Attributes
		n += int64(unsafe.Sizeof(*o)) + int64(len(o.Type)+len(o.ID)+len(o.Self))
		if len(o.Raw) > 0 && (len(e.Data) == 0 || unsafe.SliceData(o.Raw) != unsafe.SliceData(e.Data)) {
			n += int64(len(o.Raw))
		}
		// The decoded attributes beyond the summary (engine results,
		// names…) are about as large as their JSON: Raw already counts
		// for them once when present, count it again.
		if len(a.LastAnalysisResults) > 0 || len(a.Names) > 0 {
			n += int64(len(o.Raw))
		}
		n += int64(len(a.MD5) + len(a.SHA1) + len(a.SHA256) + len(a.MeaningfulName))
		if a.LastAnalysisStats != nil {
			n += int64(unsafe.Sizeof(*a.LastAnalysisStats))
		}
		if a.PopularThreat != nil {
			n += int64(unsafe.Sizeof(*a.PopularThreat)) + int64(len(a.PopularThreat.SuggestedThreatLabel))
		}
	}
	return n
}
