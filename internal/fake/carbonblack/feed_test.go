package carbonblack

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// feedSet is a pair of feeds the feed tests run on: a valid feed with one
// report per IOC type (all scored alike) and a feed refused for its icon.
// The synthetic set is the project's own (testdata/, see
// testdata/SOURCES.md); the real one (cbfeeds' template and a 2014
// ThreatConnect feed from ../shared/testdata/cb) makes the same tests
// fidelity tests.
type feedSet struct {
	name              string
	dir               string // "" for ../shared/testdata/cb
	valid, invalid    string // file names
	feedName, display string // the valid feed's feedinfo
	category          string
	rating            float64
	score             int
	link              string
	md5IOC            string // the md5 IOC of report md5Report (upper case)
	md5Report         string
	sha256IOC         string // the sha256 IOC (upper case)
	moduleFilename    string // an observed filename the modules query IOC matches
}

var feedSets = []feedSet{
	{
		name: "synthetic", dir: "testdata",
		valid: "feed_all_ioc_types.json", invalid: "feed_invalid_icon.json",
		feedName: "fixtureallioc", display: "Fixture Feed All IOC Types", category: "Fixtures", rating: 3,
		score: 64, link: "https://feeds.example.org/fixture",
		md5IOC: "D006B1EB9996673766CCE4DF2BF2B481", md5Report: "WithMd5",
		sha256IOC:      "A0451654712B6F9545B429E833AA693B384475FF7EA7DC25C5E9A6BB1E130F20",
		moduleFilename: `c:\windows\wordpad.exe`,
	},
	{
		name:  "real (fidelity)",
		valid: "feed_cbfeeds_template_all_ioc_types.json", invalid: "feed_threatconnect_2014_invalid_icon.json",
		feedName: "qafeedbwf912316192", display: "QA Feed BWF912316192", category: "Carbon Black", rating: 2,
		score: 42, link: "https://gitlab.bit9.local/cbqa/cbr-server-tests",
		md5IOC: "DBB379C9337CC31B24743E7CF81EE8BD", md5Report: "WithMd5",
		sha256IOC:      "94DCF0531121E13A73114E8806F096D31E21DAB4A8B1BFEF95B5E0171A9A0556",
		moduleFilename: `c:\windows\notepad.exe`,
	},
}

// forEachFeedSet runs f in a subtest per feed set; the real one skips when
// ../shared/testdata/cb is absent.
func forEachFeedSet(t *testing.T, f func(t *testing.T, set feedSet)) {
	t.Helper()
	for _, set := range feedSets {
		t.Run(set.name, func(t *testing.T) {
			if set.dir == "" {
				set.dir = cbDir(t)
			}
			f(t, set)
		})
	}
}

func (set feedSet) read(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(set.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// feedDoc builds a feed named virustotalconnector with reports.
func feedDoc(t *testing.T, reports ...map[string]any) []byte {
	t.Helper()
	if reports == nil {
		reports = []map[string]any{}
	}
	raw, err := json.Marshal(map[string]any{
		"feedinfo": map[string]any{
			"name": "virustotalconnector", "display_name": "VirusTotal", "provider_url": "http://www.virustotal.com/",
			"summary": "VirusTotal verdicts", "tech_data": "A VirusTotal API key is required", "category": "Connectors",
		},
		"reports": reports,
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func report(id string, score int, ts int64, md5s ...string) map[string]any {
	return map[string]any{
		"id": id, "score": score, "timestamp": ts, "title": "report " + id,
		"link": "https://www.virustotal.com/gui/file/" + id, "iocs": map[string]any{"md5": md5s},
	}
}

// createFeed registers feedURL and returns its id.
func createFeed(t *testing.T, s *Server, feedURL string, extra map[string]any) int {
	t.Helper()
	body := map[string]any{"feed_url": feedURL, "enabled": true, "use_proxy": false, "validate_server_cert": false}
	for k, v := range extra {
		body[k] = v
	}
	var out map[string]any
	callJSON(t, s, http.MethodPost, "/api/v1/feed", body, http.StatusOK, &out)
	return int(out["id"].(float64))
}

func syncFeed(t *testing.T, s *Server, id int, full bool) {
	t.Helper()
	var out map[string]string
	callJSON(t, s, http.MethodPost, "/api/v1/feed/"+strconv.Itoa(id)+"/synchronize", map[string]bool{"full_sync": full}, http.StatusOK, &out)
	if out["result"] != "success" {
		t.Fatalf("synchronize answered %v", out)
	}
}

func onlyFeed(t *testing.T, s *Server) Feed {
	t.Helper()
	fs := s.Feeds()
	if len(fs) != 1 {
		t.Fatalf("%d feeds, want 1", len(fs))
	}
	return fs[0]
}

func TestFeedCreationReadsTheFeedinfoAndListsTheFeed(t *testing.T) {
	forEachFeedSet(t, testFeedCreationReadsTheFeedinfoAndListsTheFeed)
}

func testFeedCreationReadsTheFeedinfoAndListsTheFeed(t *testing.T, set feedSet) {
	fs := newFeedServer(t, set.read(t, set.valid))
	s := newServer(t, Config{})
	var created map[string]any
	callJSON(t, s, http.MethodPost, "/api/v1/feed",
		map[string]any{"feed_url": fs.URL + "/feed.json", "enabled": true, "use_proxy": false, "validate_server_cert": false},
		http.StatusOK, &created)
	want := map[string]any{
		"name": set.feedName, "display_name": set.display, "category": set.category,
		"provider_rating": set.rating, "manually_added": true, "enabled": true, "feed_url": fs.URL + "/feed.json",
		"use_proxy": false, "validate_server_cert": false, "username": nil, "password": nil,
	}
	for k, v := range want {
		if !cmp.Equal(created[k], v) {
			t.Errorf("created %s = %v, want %v", k, created[k], v)
		}
	}

	var list []map[string]any
	callJSON(t, s, http.MethodGet, "/api/v1/feed", nil, http.StatusOK, &list)
	if len(list) != 1 {
		t.Fatalf("%d feeds listed, want 1", len(list))
	}
	if !cmp.Equal(list[0]["name"], set.feedName) || !cmp.Equal(list[0]["id"], 1.0) {
		t.Errorf("listed feed %v, want feed 1 named %s", list[0], set.feedName)
	}
	t.Run("feed object shape (fidelity)", func(t *testing.T) {
		var real []map[string]any
		readJSON(t, "api_v1_feed_list_excerpt.json", &real)
		if diff := cmp.Diff(sortedKeys(real[0]), sortedKeys(list[0])); diff != "" {
			t.Errorf("feed object keys (-real +fake):\n%s", diff)
		}
		for k, v := range list[0] {
			for _, r := range real {
				if rv := r[k]; rv != nil && v != nil && jsonType(rv) != jsonType(v) {
					t.Errorf("%s is a %s, the real server sends a %s", k, jsonType(v), jsonType(rv))
				}
			}
		}
	})
	var one map[string]any
	callJSON(t, s, http.MethodGet, "/api/v1/feed/1", nil, http.StatusOK, &one)
	if diff := cmp.Diff(list[0], one); diff != "" {
		t.Errorf("GET /api/v1/feed/1 differs from the list entry:\n%s", diff)
	}
	f := onlyFeed(t, s)
	if f.ID != 1 || f.Name != set.feedName || f.Syncs != 0 || len(f.Reports) != 0 || !f.Created.Equal(t0) {
		t.Errorf("Feeds()[0] = %+v", f)
	}
}

func TestFeedSyncTagsBinariesSoTheExclusionQueryExcludesThem(t *testing.T) {
	forEachFeedSet(t, testFeedSyncTagsBinariesSoTheExclusionQueryExcludesThem)
}

func testFeedSyncTagsBinariesSoTheExclusionQueryExcludesThem(t *testing.T, set feedSet) {
	templateName := set.feedName
	fs := newFeedServer(t, set.read(t, set.valid))
	s := newServer(t, Config{})
	// sha256 IOC of report WithSha256
	s.AddBinary(Binary{MD5: mdB, Size: 10, SHA256: set.sha256IOC})
	// matched by the modules query IOC of WithQueryModule (observed_filename)
	s.AddBinary(Binary{MD5: mdC, Size: 10, ObservedFilenames: []string{set.moduleFilename}})
	s.AddBinary(Binary{MD5: mdD, Size: 10, OriginalFilename: "calc.exe"})
	id := createFeed(t, s, fs.URL, nil)
	syncFeed(t, s, id, false)
	// md5 IOC of report WithMd5; binaries that arrive later are tagged too
	mdX := set.md5IOC
	s.AddBinary(Binary{MD5: mdX, Size: 10})

	for _, md5sum := range []string{mdX, mdB, mdC} {
		if diff := cmp.Diff(map[string]int{templateName: set.score}, s.Tags(md5sum)); diff != "" {
			t.Errorf("Tags(%s) (-want +got):\n%s", md5sum, diff)
		}
	}
	if got := s.Tags(mdD); len(got) != 0 {
		t.Errorf("Tags(untouched) = %v", got)
	}
	var doc map[string]any
	callJSON(t, s, http.MethodGet, "/api/v1/binary/"+strings.ToLower(mdX)+"/summary", nil, http.StatusOK, &doc)
	wantTags := map[string]any{
		"alliance_score_" + templateName:   float64(set.score),
		"alliance_link_" + templateName:    set.link,
		"alliance_data_" + templateName:    []any{set.md5Report},
		"alliance_updated_" + templateName: "2024-03-01T12:00:00Z",
	}
	for k, v := range wantTags {
		if !cmp.Equal(doc[k], v) {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}

	if got := searchAll(t, s, "-alliance_score_"+templateName+":*", "md5 asc"); !slices.Equal(got, []string{mdD}) {
		t.Errorf("exclusion query selects %v, want only %s", got, mdD)
	}
	scoreRange := fmt.Sprintf(":[%d TO %d]", set.score-2, set.score+8)
	if got := searchAll(t, s, "alliance_score_"+templateName+scoreRange, "md5 asc"); !slices.Equal(got, slices.Sorted(slices.Values([]string{mdB, mdC, mdX}))) {
		t.Errorf("score range selects %v", got)
	}
	f := onlyFeed(t, s)
	if f.Syncs != 1 || f.LastSyncFull || len(f.LastFetched) != 9 || len(f.LastApplied) != 9 || len(f.Rejected) != 0 || f.LastError != "" {
		t.Errorf("feed state: syncs %d full %v fetched %d applied %d rejected %v error %q",
			f.Syncs, f.LastSyncFull, len(f.LastFetched), len(f.LastApplied), f.Rejected, f.LastError)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings %v", f.Warnings)
	}
}

func TestIncrementalSyncsTakeOnlyNewOrReTimestampedReportsAndFullSyncsWithdraw(t *testing.T) {
	s := newServer(t, Config{})
	for _, m := range []string{mdA, mdB, mdC} {
		s.AddBinary(Binary{MD5: m, Size: 10})
	}
	r1, r2 := report("Binary_A", 10, 100, mdA), report("Binary_B", 20, 100, mdB)
	fs := newFeedServer(t, feedDoc(t, r1, r2))
	id := createFeed(t, s, fs.URL, nil)
	const name = "virustotalconnector"
	step := func(full bool, wantApplied, wantRemoved []string, wantScores map[string]int) {
		t.Helper()
		syncFeed(t, s, id, full)
		f := onlyFeed(t, s)
		if diff := cmp.Diff(wantApplied, f.LastApplied, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantRemoved, f.LastRemoved, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("removed (-want +got):\n%s", diff)
		}
		got := map[string]int{}
		for _, m := range []string{mdA, mdB, mdC} {
			if sc, ok := s.Tags(m)[name]; ok {
				got[m] = sc
			}
		}
		if diff := cmp.Diff(wantScores, got); diff != "" {
			t.Errorf("scores (-want +got):\n%s", diff)
		}
	}

	step(false, []string{"Binary_A", "Binary_B"}, nil, map[string]int{mdA: 10, mdB: 20})

	r1["score"] = 90 // changed without a timestamp bump: an incremental sync ignores it
	fs.set(feedDoc(t, r1, r2, report("Binary_C", 30, 100, mdC)))
	step(false, []string{"Binary_C"}, nil, map[string]int{mdA: 10, mdB: 20, mdC: 30})

	r1["timestamp"] = 200
	fs.set(feedDoc(t, r1, r2, report("Binary_C", 30, 100, mdC)))
	step(false, []string{"Binary_A"}, nil, map[string]int{mdA: 90, mdB: 20, mdC: 30})

	fs.set(feedDoc(t, r1, report("Binary_C", 30, 100, mdC))) // Binary_B withdrawn
	step(false, nil, nil, map[string]int{mdA: 90, mdB: 20, mdC: 30})

	step(true, nil, []string{"Binary_B"}, map[string]int{mdA: 90, mdC: 30})
	if got := searchAll(t, s, "-alliance_score_virustotalconnector:*", "md5 asc"); !slices.Equal(got, []string{mdB}) {
		t.Errorf("after the full sync the exclusion query selects %v, want %s", got, mdB)
	}

	fs.set(feedDoc(t, r1, report("Binary_C", 35, 100, mdC))) // a full sync takes any change
	step(true, []string{"Binary_C"}, nil, map[string]int{mdA: 90, mdC: 35})

	f := onlyFeed(t, s)
	var ids []string
	for _, r := range f.Reports {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"Binary_A", "Binary_C"}) || f.Syncs != 6 || f.FullSyncs != 2 || !f.LastSyncFull {
		t.Errorf("reports %v syncs %d full %d last full %v", ids, f.Syncs, f.FullSyncs, f.LastSyncFull)
	}
}

func TestSynchronizeWithoutABodyIsAFullSync(t *testing.T) {
	s := newServer(t, Config{})
	fs := newFeedServer(t, feedDoc(t, report("r", 5, 1, mdA)))
	id := createFeed(t, s, fs.URL, nil)
	callJSON(t, s, http.MethodPost, "/api/v1/feed/"+strconv.Itoa(id)+"/synchronize", nil, http.StatusOK, nil)
	if f := onlyFeed(t, s); !f.LastSyncFull || f.FullSyncs != 1 {
		t.Errorf("LastSyncFull %v FullSyncs %d, want a full sync", f.LastSyncFull, f.FullSyncs)
	}
	callJSON(t, s, http.MethodPost, "/api/v1/feed/"+strconv.Itoa(id)+"/synchronize", "not an object", http.StatusBadRequest, nil)
}

func TestInvalidReportsAreRejectedAndRecorded(t *testing.T) {
	s := newServer(t, Config{})
	for _, m := range []string{mdA, mdB, mdC} {
		s.AddBinary(Binary{MD5: m, Size: 10})
	}
	emptyTitle := report("r-empty", 50, 1, mdB)
	emptyTitle["title"] = ""
	noTitle := report("r-notitle", 50, 1, mdC)
	delete(noTitle, "title")
	intID := report("x", 50, 1, mdC)
	intID["id"] = 170227
	urlIOC := report("r-url", 50, 1)
	urlIOC["iocs"] = map[string]any{"url": []string{"http://x"}}
	doc := feedDoc(t,
		report("r-ok", 50, 1, mdA),
		emptyTitle,
		noTitle,
		report("r-score", 101, 1, mdC),
		report("bad id", 50, 1, mdC),
		report("r-md5", 50, 1, "xyz"),
		report("r-ok", 60, 1, mdC),
		intID,
		urlIOC,
		map[string]any{"id": "r-bare", "score": 1, "title": "bare"},
		report("r-negative", -10, 1, mdC),
	)
	fs := newFeedServer(t, doc)
	id := createFeed(t, s, fs.URL, nil)
	syncFeed(t, s, id, true)

	f := onlyFeed(t, s)
	want := []struct {
		index      int
		id, reason string
	}{
		{2, "r-notitle", "missing required field(s): title"},
		{3, "r-score", "score 101 out of range"},
		{4, "bad id", "may only contain"},
		{5, "r-md5", `invalid hash: "xyz"`},
		{6, "r-ok", "duplicate report id"},
		{7, "170227", `"id" must be a string`},
		{8, "r-url", `unknown ioc type "url"`},
		{9, "r-bare", "missing required field(s): iocs, link, timestamp"},
	}
	if len(f.Rejected) != len(want) {
		t.Fatalf("rejected %+v, want %d", f.Rejected, len(want))
	}
	for i, w := range want {
		got := f.Rejected[i]
		if got.Index != w.index || got.ReportID != w.id || !strings.Contains(got.Reason, w.reason) {
			t.Errorf("rejection %d = %+v, want index %d id %q reason containing %q", i, got, w.index, w.id, w.reason)
		}
	}
	if diff := cmp.Diff([]string{"report r-empty: empty title"}, f.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	var fetched []string
	for _, r := range f.LastFetched {
		fetched = append(fetched, r.ID)
	}
	if diff := cmp.Diff([]string{"r-ok", "r-empty", "r-negative"}, fetched); diff != "" {
		t.Errorf("accepted reports (-want +got):\n%s", diff)
	}
	if s.Tags(mdA)["virustotalconnector"] != 50 || s.Tags(mdB)["virustotalconnector"] != 50 || s.Tags(mdC)["virustotalconnector"] != -10 {
		t.Errorf("tags A %v B %v C %v", s.Tags(mdA), s.Tags(mdB), s.Tags(mdC))
	}
}

func TestInvalidOrUnreachableFeedsAreRefusedAtCreation(t *testing.T) {
	forEachFeedSet(t, testInvalidOrUnreachableFeedsAreRefusedAtCreation)
}

func testInvalidOrUnreachableFeedsAreRefusedAtCreation(t *testing.T, set feedSet) {
	threatconnect := set.read(t, set.invalid)
	badName := strings.Replace(string(feedDoc(t)), `"name":"virustotalconnector"`, `"name":"virus total"`, 1)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, tc := range []struct {
		name    string
		body    any
		serve   []byte // served at the feed URL when body has no feed_url
		status  int
		reason  string
		message string
	}{
		{"feed with a file path as icon", nil, threatconnect, http.StatusInternalServerError, "invalid_feed", `"icon"`},
		{"not JSON", nil, []byte("<html>"), http.StatusInternalServerError, "invalid_feed", "not a JSON object"},
		{"no feedinfo", nil, []byte(`{"reports": []}`), http.StatusInternalServerError, "invalid_feed", "feedinfo"},
		{"feed name with a space", nil, []byte(badName), http.StatusInternalServerError, "invalid_feed", "virus total"},
		{"feed server answers 404", map[string]any{"feed_url": "/missing"}, nil, http.StatusInternalServerError, "feed_retrieval_failed", "404"},
		{"feed server down", map[string]any{"feed_url": gone.URL}, nil, http.StatusInternalServerError, "feed_retrieval_failed", "fetch feed"},
		{"no feed_url", map[string]any{"enabled": true}, nil, http.StatusBadRequest, "invalid_request", "feed_url is required"},
		{"not an http URL", map[string]any{"feed_url": "file:///etc/passwd"}, nil, http.StatusBadRequest, "invalid_request", "http or https"},
		{"bad flag", map[string]any{"feed_url": "http://x/", "enabled": "sometimes"}, nil, http.StatusBadRequest, "invalid_request", "enabled"},
		{"body not an object", "feed", nil, http.StatusBadRequest, "invalid_request", "JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, Config{})
			body := tc.body
			if m, ok := body.(map[string]any); ok && m["feed_url"] == "/missing" {
				srv := httptest.NewServer(http.NotFoundHandler())
				t.Cleanup(srv.Close)
				m["feed_url"] = srv.URL + "/missing"
			}
			if tc.serve != nil {
				body = map[string]any{"feed_url": newFeedServer(t, tc.serve).URL}
			}
			var got apiError
			callJSON(t, s, http.MethodPost, "/api/v1/feed", body, tc.status, &got)
			if got.Reason != tc.reason || !strings.Contains(got.Message, tc.message) {
				t.Errorf("answer %+v, want reason %q and a message containing %q", got, tc.reason, tc.message)
			}
			if fs := s.Feeds(); len(fs) != 0 {
				t.Errorf("a feed was registered: %+v", fs)
			}
		})
	}
}

func TestAFailedSyncIsRecordedAndKeepsTheTags(t *testing.T) {
	forEachFeedSet(t, testAFailedSyncIsRecordedAndKeepsTheTags)
}

func testAFailedSyncIsRecordedAndKeepsTheTags(t *testing.T, set feedSet) {
	threatconnect := set.read(t, set.invalid)
	s := newServer(t, Config{})
	s.AddBinary(Binary{MD5: mdA, Size: 10})
	good := newFeedServer(t, feedDoc(t, report("r", 70, 1, mdA)))
	bad := newFeedServer(t, threatconnect)
	id := createFeed(t, s, good.URL, nil)
	syncFeed(t, s, id, true)
	callJSON(t, s, http.MethodPut, "/api/v1/feed/"+strconv.Itoa(id), map[string]any{"feed_url": bad.URL}, http.StatusOK, nil)
	syncFeed(t, s, id, true)

	f := onlyFeed(t, s)
	if f.SyncFailures != 1 || f.Syncs != 1 || !strings.Contains(f.LastError, "icon") {
		t.Errorf("SyncFailures %d Syncs %d LastError %q", f.SyncFailures, f.Syncs, f.LastError)
	}
	if got := s.Tags(mdA); got["virustotalconnector"] != 70 {
		t.Errorf("tags after a failed sync = %v", got)
	}
	if st := s.Stats(); st.SyncFailures != 1 || st.Syncs != 1 || st.FeedFetches != 3 {
		t.Errorf("Stats: syncs %d failures %d fetches %d", st.Syncs, st.SyncFailures, st.FeedFetches)
	}
}

func TestFeedCredentialsAreSentAndETagsHonoured(t *testing.T) {
	s := newServer(t, Config{})
	fs := newFeedServer(t, feedDoc(t, report("r", 5, 1, mdA)))
	fs.user, fs.pass = "cb", "s3cret"
	callJSON(t, s, http.MethodPost, "/api/v1/feed", map[string]any{"feed_url": fs.URL}, http.StatusInternalServerError, nil)
	id := createFeed(t, s, fs.URL, map[string]any{"username": "cb", "password": "s3cret"})

	syncFeed(t, s, id, false)
	syncFeed(t, s, id, false)
	if f := onlyFeed(t, s); !f.LastSyncNotModified || f.Syncs != 2 || len(f.Reports) != 1 {
		t.Errorf("second incremental sync: not modified %v syncs %d reports %d", f.LastSyncNotModified, f.Syncs, len(f.Reports))
	}
	syncFeed(t, s, id, true)
	if f := onlyFeed(t, s); f.LastSyncNotModified {
		t.Error("a full sync used If-None-Match")
	}
	if _, notMod := fs.counts(); notMod != 1 {
		t.Errorf("feed server answered 304 %d times, want 1", notMod)
	}
	var list []map[string]any
	callJSON(t, s, http.MethodGet, "/api/v1/feed", nil, http.StatusOK, &list)
	if list[0]["username"] != "cb" || list[0]["password"] != "s3cret" {
		t.Errorf("username %v password %v", list[0]["username"], list[0]["password"])
	}
}

func TestFeedUpdateDisableAndDelete(t *testing.T) {
	s := newServer(t, Config{})
	s.AddBinary(Binary{MD5: mdA, Size: 10})
	fs := newFeedServer(t, feedDoc(t, report("r", 5, 1, mdA)))
	id := createFeed(t, s, fs.URL, nil)
	path := "/api/v1/feed/" + strconv.Itoa(id)
	syncFeed(t, s, id, true)

	var updated map[string]any
	callJSON(t, s, http.MethodPut, path, map[string]any{"enabled": false, "id": 999, "name": "ignored"}, http.StatusOK, &updated)
	if updated["enabled"] != false || updated["id"] != float64(id) || updated["name"] != "virustotalconnector" {
		t.Errorf("PUT answered %v", updated)
	}
	var conflict apiError
	callJSON(t, s, http.MethodPost, path+"/synchronize", map[string]bool{"full_sync": false}, http.StatusConflict, &conflict)
	if conflict.Reason != "feed_disabled" {
		t.Errorf("disabled sync: %+v", conflict)
	}
	if got := s.Tags(mdA); got["virustotalconnector"] != 5 {
		t.Errorf("disabling dropped the tags: %v", got)
	}

	callJSON(t, s, http.MethodPut, path, map[string]any{"enabled": "sometimes"}, http.StatusBadRequest, nil)
	callJSON(t, s, http.MethodPut, path, map[string]any{"feed_url": "gopher://x"}, http.StatusBadRequest, nil)
	callJSON(t, s, http.MethodPut, path, map[string]any{"enabled": true, "use_proxy": true, "validate_server_cert": "true", "order": 3}, http.StatusOK, &updated)
	if updated["enabled"] != true || updated["use_proxy"] != true || updated["validate_server_cert"] != true || updated["order"] != 3.0 {
		t.Errorf("PUT answered %v", updated)
	}
	if f := onlyFeed(t, s); !f.Enabled || !f.UseProxy || !f.ValidateServerCert || f.FeedURL != fs.URL {
		t.Errorf("feed after PUT: %+v", f)
	}

	var deleted map[string]string
	callJSON(t, s, http.MethodDelete, path, nil, http.StatusOK, &deleted)
	if deleted["result"] != "success" {
		t.Errorf("DELETE answered %v", deleted)
	}
	if got := s.Tags(mdA); len(got) != 0 {
		t.Errorf("tags of a deleted feed remain: %v", got)
	}
	var list []any
	callJSON(t, s, http.MethodGet, "/api/v1/feed", nil, http.StatusOK, &list)
	if len(list) != 0 {
		t.Errorf("feeds after DELETE: %v", list)
	}
	for _, p := range []string{path, "/api/v1/feed/abc"} {
		callJSON(t, s, http.MethodGet, p, nil, http.StatusNotFound, nil)
		callJSON(t, s, http.MethodPut, p, map[string]any{"enabled": true}, http.StatusNotFound, nil)
		callJSON(t, s, http.MethodDelete, p, nil, http.StatusNotFound, nil)
		callJSON(t, s, http.MethodPost, p+"/synchronize", nil, http.StatusNotFound, nil)
	}
}

func TestFeedsAreNumberedInOrderAndTheirNamesDriveTheTagFields(t *testing.T) {
	s := newServer(t, Config{})
	s.AddBinary(Binary{MD5: mdA, Size: 10})
	vt := newFeedServer(t, feedDoc(t, report("r", 5, 1, mdA)))
	other := strings.Replace(string(feedDoc(t, report("r", 9, 1, mdA))), `"name":"virustotalconnector"`, `"name":"OtherFeed"`, 1)
	ot := newFeedServer(t, []byte(other))
	syncFeed(t, s, createFeed(t, s, vt.URL, nil), true)
	syncFeed(t, s, createFeed(t, s, ot.URL, nil), true)
	if diff := cmp.Diff(map[string]int{"virustotalconnector": 5, "otherfeed": 9}, s.Tags(mdA)); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}
	res := search(t, s, "alliance_score_otherfeed:9 alliance_score_virustotalconnector:5", url.Values{})
	if res.TotalResults != 1 {
		t.Errorf("both tags: %d results", res.TotalResults)
	}
	fs := s.Feeds()
	if len(fs) != 2 || fs[0].ID != 1 || fs[1].ID != 2 || fs[1].Name != "OtherFeed" {
		t.Errorf("feeds %+v", fs)
	}
}
