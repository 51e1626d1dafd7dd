package carbonblack

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// searchAnswer is the body of GET /api/v1/binary.
type searchAnswer struct {
	Terms        []string         `json:"terms"`
	TotalResults int              `json:"total_results"`
	Highlights   []any            `json:"highlights"`
	Facets       map[string]any   `json:"facets"`
	Results      []map[string]any `json:"results"`
	Elapsed      float64          `json:"elapsed"`
	Start        int              `json:"start"`
}

// sortKey is one "field asc|desc" of the sort parameter.
type sortKey struct {
	field string
	kind  kind
	desc  bool
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	rows, err := intParam(params.Get("rows"), defaultRows)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "rows: "+err.Error())
		return
	}
	rows = min(rows, maxRows)
	start, err := intParam(params.Get("start"), 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "start: "+err.Error())
		return
	}
	keys, err := parseSort(params.Get("sort"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_parameter", "sort: "+err.Error())
		return
	}
	query, terms, err := parseQuery(params.Get("q"))
	if err != nil {
		var qe *queryError
		if errors.As(err, &qe) {
			writeError(w, http.StatusBadRequest, "query_malformed_syntax", qe.msg)
			return
		}
		writeError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}

	began := s.now()
	s.mu.Lock()
	var (
		page  []*record
		total int
	)
	hit := func(rec *record) { // in result order
		if total >= start && total < start+rows {
			page = append(page, rec)
		}
		total++
	}
	if len(keys) == 1 && keys[0].field == "server_added_timestamp" {
		// The collector's search: walk the index from the range's start.
		// One view for every binary walked: a million-binary walk
		// allocates nothing per binary that does not match.
		lo, hi := addedBounds(query)
		var d docView
		s.walkByAdded(lo, hi, keys[0].desc, func(rec *record) {
			d = docView{rec: rec, alliance: s.allianceFields(rec)}
			if query.match(&d) {
				hit(rec)
			}
		})
	} else {
		var hits []*docView
		for _, rec := range s.order {
			d := &docView{rec: rec, alliance: s.allianceFields(rec)}
			if query.match(d) {
				hits = append(hits, d)
			}
		}
		slices.SortFunc(hits, func(a, b *docView) int { return compareDocs(a, b, keys) })
		for _, d := range hits {
			hit(d.rec)
		}
	}
	ans := searchAnswer{
		Terms:        terms,
		TotalResults: total,
		Highlights:   []any{},
		Facets:       map[string]any{},
		Results:      make([]map[string]any, 0, len(page)),
		Start:        start,
	}
	for _, rec := range page {
		ans.Results = append(ans.Results, s.document(rec))
	}
	s.mu.Unlock()
	ans.Elapsed = s.now().Sub(began).Seconds()
	s.count(func(st *Stats) { st.Searches++ })
	writeJSON(w, http.StatusOK, ans)
}

func intParam(v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative integer", v)
	}
	return n, nil
}

// parseSort parses "field asc|desc[, ...]"; empty is the server default
// server_added_timestamp desc.
func parseSort(v string) ([]sortKey, error) {
	if strings.TrimSpace(v) == "" {
		return []sortKey{{field: "server_added_timestamp", kind: kindDate, desc: true}}, nil
	}
	var keys []sortKey
	for part := range strings.SplitSeq(v, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return nil, fmt.Errorf("%q: want \"field asc\" or \"field desc\"", strings.TrimSpace(part))
		}
		k, ok := lookupField(f[0])
		if !ok {
			return nil, fmt.Errorf("unknown field %q", f[0])
		}
		var desc bool
		switch strings.ToLower(f[1]) {
		case "asc":
		case "desc":
			desc = true
		default:
			return nil, fmt.Errorf("%q: order must be asc or desc", f[1])
		}
		keys = append(keys, sortKey{field: f[0], kind: k, desc: desc})
	}
	return keys, nil
}

// compareDocs orders by keys, missing values last, then by md5 ascending.
func compareDocs(a, b *docView, keys []sortKey) int {
	for _, k := range keys {
		c, decided := compareField(a, b, k)
		if decided && c != 0 {
			return c
		}
	}
	return strings.Compare(a.rec.md5, b.rec.md5)
}

// compareField compares one key; decided is false when both values are
// missing.
func compareField(a, b *docView, k sortKey) (int, bool) {
	va, oka := sortValue(a, k)
	vb, okb := sortValue(b, k)
	switch {
	case !oka && !okb:
		return 0, false
	case !oka:
		return 1, true
	case !okb:
		return -1, true
	}
	var c int
	switch x := va.(type) {
	case float64:
		c = cmpFloat(x, vb.(float64))
	case string:
		c = strings.Compare(x, vb.(string))
	case int64: // unix nanoseconds of a date
		c = cmpFloat(float64(x), float64(vb.(int64)))
	}
	if k.desc {
		c = -c
	}
	return c, true
}

// sortValue is the first value of the key's field, as float64 (numbers and
// booleans), int64 (dates) or a lower-case string.
func sortValue(d *docView, k sortKey) (any, bool) {
	switch k.kind {
	case kindDate:
		ts := d.times(k.field)
		if len(ts) == 0 {
			return nil, false
		}
		return ts[0].UnixNano(), true
	case kindInt:
		for _, v := range d.values(k.field) {
			if f, ok := toFloat(v); ok {
				return f, true
			}
		}
		return nil, false
	case kindBool:
		for _, v := range d.values(k.field) {
			if b, ok := v.(bool); ok {
				if b {
					return 1.0, true
				}
				return 0.0, true
			}
		}
		return nil, false
	}
	vs := d.values(k.field)
	if len(vs) == 0 {
		return nil, false
	}
	return strings.ToLower(fmt.Sprint(vs[0])), true
}

// insertByAdded puts rec in s.byAdded, ordered by server_added_timestamp
// then md5 (the order of a search sorted by server_added_timestamp).
// s.mu must be held.
func (s *Server) insertByAdded(rec *record) {
	n := len(s.byAdded)
	if n == 0 || addedBefore(s.byAdded[n-1], rec) { // binaries mostly arrive in order
		s.byAdded = append(s.byAdded, rec)
		return
	}
	i := sort.Search(n, func(i int) bool { return addedBefore(rec, s.byAdded[i]) })
	s.byAdded = slices.Insert(s.byAdded, i, rec)
}

// addedBefore is the order of s.byAdded: server_added_timestamp, then md5.
func addedBefore(a, b *record) bool {
	return a.added.Before(b.added) || a.added.Equal(b.added) && a.md5 < b.md5
}

// walkByAdded calls fn for the binaries whose server_added_timestamp is in
// [lo, hi] (zero: open), in the order of a search sorted by
// server_added_timestamp asc or desc (ties by md5 ascending either way).
// s.mu must be held.
func (s *Server) walkByAdded(lo, hi time.Time, desc bool, fn func(*record)) {
	b := s.byAdded
	from := 0
	if !lo.IsZero() {
		from = sort.Search(len(b), func(i int) bool { return !b[i].added.Before(lo) })
	}
	to := len(b) // exclusive
	if !hi.IsZero() {
		to = sort.Search(len(b), func(i int) bool { return b[i].added.After(hi) })
	}
	if !desc {
		for _, rec := range b[from:to] {
			fn(rec)
		}
		return
	}
	for j := to; j > from; {
		g := j - 1 // the group of binaries added at b[j-1].added, md5 ascending
		for g > from && b[g-1].added.Equal(b[j-1].added) {
			g--
		}
		for _, rec := range b[g:j] {
			fn(rec)
		}
		j = g
	}
}

// addedBounds returns the server_added_timestamp range a query requires
// (zero: open): its own range, or the narrowest of an AND's. Binaries
// outside it cannot match.
func addedBounds(n node) (lo, hi time.Time) {
	switch x := n.(type) {
	case rangeNode:
		if x.field == "server_added_timestamp" && x.kind == kindDate {
			if !x.lo.open {
				lo = x.lo.t
			}
			if !x.hi.open {
				hi = x.hi.t
			}
		}
	case andNode:
		for _, k := range x {
			l, h := addedBounds(k)
			if !l.IsZero() && (lo.IsZero() || l.After(lo)) {
				lo = l
			}
			if !h.IsZero() && (hi.IsZero() || h.Before(hi)) {
				hi = h
			}
		}
	}
	return lo, hi
}
