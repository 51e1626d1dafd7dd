package carbonblack

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestInfoHasTheKeysAndTypesOfTheRealAnswer is a fidelity test: /api/info
// against the real answer of ../shared/testdata/cb.
func TestInfoHasTheKeysAndTypesOfTheRealAnswer(t *testing.T) {
	var want map[string]any
	readJSON(t, "api_info.json", &want)
	s := newServer(t, Config{})
	var got map[string]any
	callJSON(t, s, http.MethodGet, "/api/info", nil, http.StatusOK, &got)
	if diff := cmp.Diff(keyTypes(want), keyTypes(got)); diff != "" {
		t.Errorf("/api/info keys and types (-real +fake):\n%s", diff)
	}
	for _, k := range []string{"version", "version_release", "maxSearchResultRows"} {
		if got[k] != want[k] {
			t.Errorf("%s = %v, want %v", k, got[k], want[k])
		}
	}
}

// TestSearchAnswerHasTheShapeOfTheRealOne is a fidelity test: the search
// answer against the real ones of ../shared/testdata/cb.
func TestSearchAnswerHasTheShapeOfTheRealOne(t *testing.T) {
	s := newServer(t, Config{})
	s.AddSyntheticBinaries(3, t0, time.Minute)
	for _, tc := range []struct {
		sample string
		rows   string
	}{
		{"binary_search_rows0.json", "0"},
		{"binary_search_rows1.json", "1"},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			var want map[string]any
			readJSON(t, tc.sample, &want)
			var got map[string]any
			callJSON(t, s, http.MethodGet, "/api/v1/binary?cb.urlver=1&facet=false&rows="+tc.rows+"&start=0", nil, http.StatusOK, &got)
			if diff := cmp.Diff(keyTypes(want), keyTypes(got)); diff != "" {
				t.Errorf("answer keys and types (-real +fake):\n%s", diff)
			}
			if got["total_results"] != float64(3) {
				t.Errorf("total_results = %v, want 3", got["total_results"])
			}
			if n := len(got["results"].([]any)); n != len(want["results"].([]any)) {
				t.Errorf("%d results, want %d", n, len(want["results"].([]any)))
			}
		})
	}
}

// TestSyntheticDocumentsHaveTheFieldsOfARealSearchResult is a fidelity
// test: it compares the
// document of a synthetic binary with the result of the real 6.2 search:
// same keys (but watchlists, present only on watchlist hits) and types.
func TestSyntheticDocumentsHaveTheFieldsOfARealSearchResult(t *testing.T) {
	var real struct {
		Results []map[string]any `json:"results"`
	}
	readJSON(t, "binary_search_rows1.json", &real)
	want := keyTypes(real.Results[0])
	delete(want, "watchlists")

	s := newServer(t, Config{})
	s.AddBinary(Binary{
		Content: []byte("MZ signed"), OriginalFilename: "appid.sys", IsExecutableImage: true,
		DigsigResult: "Signed", DigsigPublisher: "Microsoft Corporation", DigsigSignTime: t0.AddDate(-1, 0, 0),
		CompanyName: "Microsoft Corporation", ServerAdded: t0,
	})
	s.AddBinary(Binary{Content: []byte("MZ unsigned"), OriginalFilename: "x.exe", ServerAdded: t0.Add(time.Second)})
	res := search(t, s, "", url.Values{"sort": {"server_added_timestamp asc"}})
	if len(res.Results) != 2 {
		t.Fatalf("%d results, want 2", len(res.Results))
	}
	if diff := cmp.Diff(want, keyTypes(res.Results[0])); diff != "" {
		t.Errorf("signed binary keys and types (-real +fake):\n%s", diff)
	}
	unsigned := maps.Clone(want)
	delete(unsigned, "digsig_publisher")
	delete(unsigned, "digsig_sign_time")
	if diff := cmp.Diff(unsigned, keyTypes(res.Results[1])); diff != "" {
		t.Errorf("unsigned binary keys and types (-want +fake):\n%s", diff)
	}
	solr := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$`)
	for _, k := range []string{"server_added_timestamp", "timestamp", "last_seen"} {
		if v := res.Results[0][k].(string); !solr.MatchString(v) {
			t.Errorf("%s = %q, not in the server's format", k, v)
		}
	}
	if got := res.Results[0]["md5"].(string); got != strings.ToUpper(got) {
		t.Errorf("md5 %q is not upper case", got)
	}
}

// TestLoadedRealBinariesAreServedUnchanged loads summary bodies (the
// synthetic ones, and as a fidelity test the real ones) and expects the
// same documents from the summary and the search.
func TestLoadedRealBinariesAreServedUnchanged(t *testing.T) {
	forEachBinarySet(t, testLoadedBinariesAreServedUnchanged)
}

func testLoadedBinariesAreServedUnchanged(t *testing.T, set binarySet) {
	dir := set.dir
	paths, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	s := newServer(t, Config{})
	n, err := s.LoadTestdata(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(paths) || n == 0 {
		t.Fatalf("LoadTestdata = %d, want %d", n, len(paths))
	}
	for _, p := range paths {
		var want map[string]any
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("decode %s: %v", p, err)
		}
		md5sum := want["md5"].(string)
		t.Run(md5sum, func(t *testing.T) {
			var summary map[string]any
			callJSON(t, s, http.MethodGet, "/api/v1/binary/"+strings.ToLower(md5sum)+"/summary", nil, http.StatusOK, &summary)
			if diff := cmp.Diff(want, summary); diff != "" {
				t.Errorf("summary (-real +fake):\n%s", diff)
			}
			res := search(t, s, "md5:"+md5sum, nil)
			if len(res.Results) != 1 {
				t.Fatalf("search md5:%s: %d results", md5sum, len(res.Results))
			}
			if diff := cmp.Diff(keyTypes(want), keyTypes(res.Results[0])); diff != "" {
				t.Errorf("search result keys and types (-real +fake):\n%s", diff)
			}
			if diff := cmp.Diff(want, res.Results[0]); diff != "" {
				t.Errorf("search result (-real +fake):\n%s", diff)
			}
		})
	}
}

func TestLoadTestdataFailsOnAMissingDirectoryGracefully(t *testing.T) {
	s := newServer(t, Config{})
	n, err := s.LoadTestdata(filepath.Join(t.TempDir(), "absent"))
	if err != nil || n != 0 {
		t.Errorf("LoadTestdata(absent) = %d, %v; want 0, nil", n, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadTestdata(dir); err == nil {
		t.Error("LoadTestdata(bad JSON) succeeded")
	}
}

func TestSolrTimeDropsTrailingZeros(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2017, 2, 1, 3, 52, 34, 137e6, time.UTC), "2017-02-01T03:52:34.137Z"},
		{time.Date(2015, 7, 10, 17, 20, 25, 30e6, time.UTC), "2015-07-10T17:20:25.03Z"},
		{time.Date(2015, 7, 31, 7, 50, 5, 560e6, time.UTC), "2015-07-31T07:50:05.56Z"},
		{time.Date(2016, 4, 12, 9, 21, 0, 0, time.UTC), "2016-04-12T09:21:00Z"},
		{time.Date(2016, 4, 12, 11, 21, 0, 999_999, time.FixedZone("x", 2*3600)), "2016-04-12T09:21:00Z"},
	} {
		if got := solrTime(tc.in); got != tc.want {
			t.Errorf("solrTime(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
