package carbonblack

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// A feed's IOC indexes (feed.byMD5, feed.bySHA) map a hash to the ids of
// the held reports that hit it, sorted, an id once per IOC (and once for a
// "modules" query IOC matching the binary). A full sync builds them from
// scratch without s.mu; an incremental one moves only the entries of the
// reports it applies, so that s.mu is not held for the whole feed while
// binary searches wait. Both give the same indexes (index is the
// reference).

// heldQuery is a held report's "modules" query IOC and the binaries it
// matches. Only a synchronisation of its feed changes it, holding both
// f.syncMu and s.mu.
type heldQuery struct {
	node node   // nil when the simulator cannot run the query
	err  string // why, then
	hits map[string]struct{}
	// seen is how much of s.journal hits reflect; catchUp runs the query
	// over the rest.
	seen int
}

// newHeld returns the held version of r, applied at, its query IOC
// compiled.
func newHeld(r Report, at time.Time) *heldReport {
	h := &heldReport{Report: cloneReport(r), applied: at}
	if r.Query == nil || r.Query.IndexType != "modules" {
		return h
	}
	n, err := modulesQuery(r.Query.SearchQuery)
	if err != nil {
		h.query = &heldQuery{err: err.Error()}
		return h
	}
	h.query = &heldQuery{node: n}
	return h
}

// run matches q against recs, the binaries as of s.journal[:seen].
func (q *heldQuery) run(recs []*record, seen int) {
	q.hits = map[string]struct{}{}
	for _, rec := range recs {
		if q.node.match(&docView{rec: rec}) {
			q.hits[rec.md5] = struct{}{}
		}
	}
	q.seen = seen
}

// runnable reports whether h has a query IOC the simulator runs.
func (h *heldReport) runnable() bool { return h.query != nil && h.query.node != nil }

// keys calls fn with each index key h contributes: its md5 IOCs and query
// hits (byMD5), its sha256 IOCs (bySHA).
func (h *heldReport) keys(fn func(sha bool, key string)) {
	for _, m := range h.MD5 {
		fn(false, strings.ToUpper(m))
	}
	for _, m := range h.SHA256 {
		fn(true, strings.ToLower(m))
	}
	if h.query != nil {
		for m := range h.query.hits {
			fn(false, m)
		}
	}
}

// indexHeld builds the indexes of held from scratch, and the set of its
// reports with a "modules" query IOC. It only reads held.
func indexHeld(held map[string]*heldReport) (byMD5, bySHA map[string][]string, queries map[string]*heldReport) {
	byMD5, bySHA, queries = map[string][]string{}, map[string][]string{}, map[string]*heldReport{}
	for _, id := range slices.Sorted(maps.Keys(held)) { // appended in id order
		h := held[id]
		h.keys(func(sha bool, key string) {
			idx := byMD5
			if sha {
				idx = bySHA
			}
			idx[key] = append(idx[key], id)
		})
		if h.query != nil {
			queries[id] = h
		}
	}
	return byMD5, bySHA, queries
}

// index rebuilds f's indexes, running its query IOCs over every binary.
// s.mu must be held.
func (s *Server) index(f *feed) {
	for _, h := range f.held {
		if h.runnable() {
			h.query.run(s.order, len(s.journal))
		}
	}
	f.byMD5, f.bySHA, f.queries = indexHeld(f.held)
}

// runQueries runs the query IOCs of hs over the binaries. It copies the
// binary list under s.mu and matches without it: stored records never
// change, and catchUp later takes the binaries stored meanwhile.
func (s *Server) runQueries(hs []*heldReport) {
	var qs []*heldQuery
	for _, h := range hs {
		if h.runnable() {
			qs = append(qs, h.query)
		}
	}
	if len(qs) == 0 {
		return
	}
	s.mu.Lock()
	recs, seen := slices.Clone(s.order), len(s.journal)
	s.mu.Unlock()
	for _, q := range qs {
		q.run(recs, seen)
	}
}

// put stores h in place of the held report with its id, if any, moving
// only that report's index entries. s.mu must be held.
func (f *feed) put(h *heldReport) {
	if old, ok := f.held[h.ID]; ok {
		old.keys(func(sha bool, key string) { dropID(f.iocIndex(sha), key, h.ID) })
		delete(f.queries, h.ID)
	}
	f.held[h.ID] = h
	h.keys(func(sha bool, key string) { insertID(f.iocIndex(sha), key, h.ID) })
	if h.query != nil {
		f.queries[h.ID] = h
	}
}

func (f *feed) iocIndex(sha bool) map[string][]string {
	if sha {
		return f.bySHA
	}
	return f.byMD5
}

// catchUp runs f's query IOCs over the binaries stored since each last ran
// (new ones, and new versions of updated ones), so that a binary added or
// changed after a sync gets or loses the tag at the next one. s.mu must be
// held.
func (s *Server) catchUp(f *feed) {
	for id, h := range f.queries {
		if !h.runnable() {
			continue
		}
		q := h.query
		for _, rec := range s.journal[q.seen:] {
			if s.binaries[rec.md5] != rec {
				continue // replaced since: a later entry is its current version
			}
			_, had := q.hits[rec.md5]
			switch hit := q.node.match(&docView{rec: rec}); {
			case hit && !had:
				q.hits[rec.md5] = struct{}{}
				insertID(f.byMD5, rec.md5, id)
			case !hit && had:
				delete(q.hits, rec.md5)
				dropID(f.byMD5, rec.md5, id)
			}
		}
		q.seen = len(s.journal)
	}
}

// queryWarnings are the warnings for f's query IOCs the simulator cannot
// run, by report id.
func (f *feed) queryWarnings() []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(f.queries)) {
		if err := f.queries[id].query.err; err != "" {
			out = append(out, fmt.Sprintf("report %s: query IOC not supported by the simulator: %s", id, err))
		}
	}
	return out
}

// insertID adds id to idx[key], keeping the ids sorted.
func insertID(idx map[string][]string, key, id string) {
	ids := idx[key]
	i, _ := slices.BinarySearch(ids, id)
	idx[key] = slices.Insert(ids, i, id)
}

// dropID removes one occurrence of id from idx[key] (an id is there once
// per entry keys yields); a key left without ids is deleted, as a rebuild
// would not have it.
func dropID(idx map[string][]string, key, id string) {
	ids := idx[key]
	i, found := slices.BinarySearch(ids, id)
	if !found {
		return
	}
	if ids = slices.Delete(ids, i, i+1); len(ids) == 0 {
		delete(idx, key)
		return
	}
	idx[key] = ids
}
