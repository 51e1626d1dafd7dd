package carbonblack

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
	var hits []*docView
	for _, rec := range s.order {
		d := &docView{rec: rec, alliance: s.allianceFields(rec)}
		if query.match(d) {
			hits = append(hits, d)
		}
	}
	slices.SortFunc(hits, func(a, b *docView) int { return compareDocs(a, b, keys) })
	ans := searchAnswer{
		Terms:        terms,
		TotalResults: len(hits),
		Highlights:   []any{},
		Facets:       map[string]any{},
		Results:      []map[string]any{},
		Start:        start,
	}
	if start < len(hits) {
		for _, d := range hits[start:min(start+rows, len(hits))] {
			ans.Results = append(ans.Results, s.document(d.rec))
		}
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
