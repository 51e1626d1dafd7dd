package carbonblack

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pageThrough collects every md5 of q by pages of rows.
func pageThrough(t *testing.T, s *Server, q, sort string, rows int) []string {
	t.Helper()
	var out []string
	for start := 0; ; start += rows {
		res := search(t, s, q, url.Values{"rows": {strconv.Itoa(rows)}, "start": {strconv.Itoa(start)}, "sort": {sort}})
		if res.Start != start {
			t.Fatalf("start = %d, want %d", res.Start, start)
		}
		out = append(out, res.md5s()...)
		if start+rows >= res.TotalResults {
			return out
		}
	}
}

func TestPagingIsStableAndBreaksTiesByMD5(t *testing.T) {
	s := newServer(t, Config{})
	// three groups of binaries sharing a server_added_timestamp
	var added []Binary
	for i := range 3 {
		added = append(added, s.AddSyntheticBinaries(4, t0.Add(time.Duration(i)*time.Hour), 0)...)
	}
	byTime := func(desc bool) []string {
		bs := slices.Clone(added)
		slices.SortFunc(bs, func(a, b Binary) int {
			if c := a.ServerAdded.Compare(b.ServerAdded); c != 0 {
				if desc {
					return -c
				}
				return c
			}
			return strings.Compare(a.MD5, b.MD5)
		})
		out := make([]string, len(bs))
		for i, b := range bs {
			out[i] = b.MD5
		}
		return out
	}
	for _, tc := range []struct {
		name, sort string
		want       []string
	}{
		{"ascending", "server_added_timestamp asc", byTime(false)},
		{"descending", "server_added_timestamp desc", byTime(true)},
		{"default is newest first", "", byTime(true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, rows := range []int{1, 3, 5, 100} {
				got := pageThrough(t, s, "", tc.sort, rows)
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("rows=%d (-want +got):\n%s", rows, diff)
				}
			}
		})
	}
}

func TestSortByOtherFieldsAndSeveralKeys(t *testing.T) {
	s := fixtureServer(t)
	for _, tc := range []struct {
		sort string
		want []string
	}{
		{"orig_mod_len asc", []string{mdE, mdA, mdB, mdD, mdC}},
		{"orig_mod_len desc", []string{mdC, mdD, mdB, mdA, mdE}},
		{"original_filename asc", []string{mdA, mdC, mdD, mdB, mdE}},
		{"host_count desc, md5 desc", []string{mdB, mdE, mdD, mdC, mdA}},
		// missing values (digsig_publisher) sort last whatever the order
		{"digsig_publisher desc", []string{mdB, mdA, mdC, mdD, mdE}},
		{"digsig_publisher asc", []string{mdA, mdB, mdC, mdD, mdE}},
	} {
		if diff := cmp.Diff(tc.want, searchAll(t, s, "", tc.sort)); diff != "" {
			t.Errorf("sort=%s (-want +got):\n%s", tc.sort, diff)
		}
	}
}

func TestBinariesAddedBetweenPagesAppearInLaterPages(t *testing.T) {
	s := newServer(t, Config{})
	first := s.AddSyntheticBinaries(5, t0, time.Minute)
	q := "server_added_timestamp:[2024-03-01T12:00:00 TO *]"
	sort := url.Values{"rows": {"2"}, "sort": {"server_added_timestamp asc"}}
	var seen []string
	page := func(start int) searchResult {
		v := url.Values{"start": {strconv.Itoa(start)}}
		for k, vs := range sort {
			v[k] = vs
		}
		res := search(t, s, q, v)
		seen = append(seen, res.md5s()...)
		return res
	}
	page(0)
	later := s.AddSyntheticBinaries(3, t0.Add(time.Hour), time.Second)
	for start := 2; ; start += 2 {
		if res := page(start); start+2 >= res.TotalResults {
			break
		}
	}
	var want []string
	for _, b := range append(first, later...) {
		want = append(want, b.MD5)
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("md5s seen (-want +got):\n%s", diff)
	}
}

func TestSearchParameters(t *testing.T) {
	s := newServer(t, Config{})
	s.AddSyntheticBinaries(maxRows+20, t0, time.Second)
	t.Run("rows defaults to 10", func(t *testing.T) {
		if got := search(t, s, "", nil); len(got.Results) != 10 || got.TotalResults != maxRows+20 {
			t.Errorf("%d results of %d, want 10 of %d", len(got.Results), got.TotalResults, maxRows+20)
		}
	})
	t.Run("rows is capped", func(t *testing.T) {
		if got := search(t, s, "", url.Values{"rows": {"5000"}}); len(got.Results) != maxRows {
			t.Errorf("%d results, want %d", len(got.Results), maxRows)
		}
	})
	t.Run("start past the end is empty", func(t *testing.T) {
		got := search(t, s, "", url.Values{"start": {"99999"}})
		if len(got.Results) != 0 || got.TotalResults != maxRows+20 {
			t.Errorf("%d results of %d", len(got.Results), got.TotalResults)
		}
	})
	t.Run("facet and cb.urlver are accepted", func(t *testing.T) {
		search(t, s, "", url.Values{"facet": {"false"}, "cb.urlver": {"1"}})
	})
	for _, bad := range []string{"rows=-1", "rows=ten", "start=-5", "sort=server_added_timestamp", "sort=nosuch+asc", "sort=md5+up"} {
		t.Run(bad+" is answered 400", func(t *testing.T) {
			var body apiError
			callJSON(t, s, http.MethodGet, "/api/v1/binary?"+bad, nil, http.StatusBadRequest, &body)
			if body.Reason != "invalid_parameter" {
				t.Errorf("reason %q", body.Reason)
			}
		})
	}
}

// TestSearchByAddedIndexMatchesFullSort: searches sorted by
// server_added_timestamp alone walk an index from the query's range; they
// answer what sorting every match answers (the same order, ties broken
// by md5, and the same total), for binaries added out of order, sharing
// timestamps, inside and outside the range.
func TestSearchByAddedIndexMatchesFullSort(t *testing.T) {
	s := newServer(t, Config{})
	for i := range 12 {
		// every third group goes back in time; groups of 3 share a timestamp
		at := t0.Add(time.Duration((i*7)%12) * time.Minute)
		s.AddSyntheticBinaries(3, at, 0)
	}
	s.AddBinary(Binary{Content: []byte("late arrival"), ServerAdded: t0.Add(90 * time.Second)})
	from, to := solrTime(t0.Add(2*time.Minute)), solrTime(t0.Add(9*time.Minute))
	queries := []string{
		"",
		"server_added_timestamp:[" + from + " TO *]",
		"server_added_timestamp:[* TO " + to + "]",
		"server_added_timestamp:[" + from + " TO " + to + "] -alliance_score_virustotal:* orig_mod_len:[1 TO 40000]",
		"server_added_timestamp:{" + from + " TO " + to + "}",
		"is_executable_image:true",
	}
	for _, q := range queries {
		for _, dir := range []string{"asc", "desc"} {
			for _, rows := range []int{1, 5, 100} {
				got := pageThrough(t, s, q, "server_added_timestamp "+dir, rows)
				want := pageThrough(t, s, q, "server_added_timestamp "+dir+", md5 asc", rows)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("q=%q %s rows=%d: index walk differs from a full sort (-want +got):\n%s", q, dir, rows, diff)
				}
				total := search(t, s, q, url.Values{"rows": {"1"}, "sort": {"server_added_timestamp " + dir}}).TotalResults
				if total != len(want) {
					t.Errorf("q=%q %s: total_results %d, want %d", q, dir, total, len(want))
				}
			}
		}
	}
	// The collector's query is walked from its range, not from the start.
	n, _, err := parseQuery("server_added_timestamp:[" + from + " TO " + to + "] -alliance_score_virustotal:* orig_mod_len:[1 TO 10]")
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := addedBounds(n); !lo.Equal(t0.Add(2*time.Minute)) || !hi.Equal(t0.Add(9*time.Minute)) {
		t.Errorf("addedBounds = %v, %v; want the query's range", lo, hi)
	}
}
