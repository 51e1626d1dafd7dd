package carbonblack

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// feedIndexes are a feed's indexes and warnings, copied.
type feedIndexes struct {
	byMD5, bySHA map[string][]string
	warnings     []string
}

func cloneIndex(idx map[string][]string) map[string][]string {
	out := make(map[string][]string, len(idx))
	for k, ids := range idx {
		out[k] = slices.Clone(ids)
	}
	return out
}

// indexesOf copies the indexes of feed id and its query warnings.
func indexesOf(t *testing.T, s *Server, id int) feedIndexes {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.feeds[id]
	return feedIndexes{cloneIndex(f.byMD5), cloneIndex(f.bySHA), f.queryWarnings()}
}

// rebuiltIndexes are the indexes s.index builds from scratch for the
// reports feed id holds, on a copy of the feed (so f is left as it is).
func rebuiltIndexes(t *testing.T, s *Server, id int) feedIndexes {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := &feed{held: map[string]*heldReport{}}
	for rid, h := range s.feeds[id].held {
		ref.held[rid] = newHeld(h.Report, h.applied)
	}
	s.index(ref)
	return feedIndexes{ref.byMD5, ref.bySHA, ref.queryWarnings()}
}

func requireRebuiltIndexes(t *testing.T, s *Server, id int, when string) {
	t.Helper()
	got, want := indexesOf(t, s, id), rebuiltIndexes(t, s, id)
	opt := cmp.AllowUnexported(feedIndexes{})
	if diff := cmp.Diff(want, got, opt, cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("%s: indexes differ from a rebuild (-rebuild +kept):\n%s", when, diff)
	}
}

func queryReport(id string, score int, ts int64, searches ...string) map[string]any {
	r := report(id, score, ts)
	r["iocs"] = map[string]any{"query": map[string]any{"index_type": "modules", "search_query": searches}}
	return r
}

func sha(i int) string { return fmt.Sprintf("%064x", 0x5a0000+i) }

func TestAnIncrementalSyncMovesTheTagsOfAChangedReport(t *testing.T) {
	s := newServer(t, Config{})
	for _, m := range []string{mdA, mdB, mdC} {
		s.AddBinary(Binary{MD5: m, Size: 10})
	}
	s.AddBinary(Binary{MD5: mdD, Size: 10, SHA256: sha(4)})
	s.AddBinary(Binary{MD5: mdE, Size: 10, SHA256: sha(5)})
	r1, r2 := report("r1", 10, 100, mdA), report("r2", 20, 100, mdB)
	r3 := report("r3", 30, 100)
	r3["iocs"] = map[string]any{"sha256": []string{sha(4)}}
	fs := newFeedServer(t, feedDoc(t, r1, r2, r3))
	id := createFeed(t, s, fs.URL, nil)
	syncFeed(t, s, id, false)

	r1["timestamp"], r1["iocs"] = 200, map[string]any{"md5": []string{strings.ToLower(mdC)}}
	r3["timestamp"], r3["iocs"] = 200, map[string]any{"sha256": []string{strings.ToUpper(sha(5))}}
	fs.set(feedDoc(t, r1, r2, r3))
	syncFeed(t, s, id, false)

	want := map[string]map[string]int{
		mdA: {}, mdB: {"virustotalconnector": 20}, mdC: {"virustotalconnector": 10},
		mdD: {}, mdE: {"virustotalconnector": 30},
	}
	for m, w := range want {
		if diff := cmp.Diff(w, s.Tags(m)); diff != "" {
			t.Errorf("Tags(%s) (-want +got):\n%s", m[:1], diff)
		}
	}
	if got := searchAll(t, s, "-alliance_score_virustotalconnector:*", "md5 asc"); !slices.Equal(got, []string{mdA, mdD}) {
		t.Errorf("exclusion query selects %v, want the binaries of the old IOCs", got)
	}
	requireRebuiltIndexes(t, s, id, "after the change")
}

// TestAnIncrementalSyncOnlyTouchesTheEntriesOfTheReportsItApplies checks
// what keeps s.mu short: the other reports' entries are the same slices.
func TestAnIncrementalSyncOnlyTouchesTheEntriesOfTheReportsItApplies(t *testing.T) {
	s := newServer(t, Config{})
	var reports []map[string]any
	for i := range 50 {
		reports = append(reports, report(fmt.Sprintf("r%02d", i), 50, 1, fmt.Sprintf("%032X", i)))
	}
	fs := newFeedServer(t, feedDoc(t, reports...))
	id := createFeed(t, s, fs.URL, nil)
	syncFeed(t, s, id, false)
	entry := func(md5sum string) *string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return &s.feeds[id].byMD5[md5sum][0]
	}
	kept := entry(fmt.Sprintf("%032X", 7))

	reports[3]["timestamp"] = 2
	fs.set(feedDoc(t, reports...))
	syncFeed(t, s, id, false)
	if entry(fmt.Sprintf("%032X", 7)) != kept {
		t.Error("an incremental sync of report r03 rebuilt the index entry of r07")
	}
	requireRebuiltIndexes(t, s, id, "after the sync")
}

func TestQueryIOCsCatchUpWithBinariesStoredBetweenSyncs(t *testing.T) {
	s := newServer(t, Config{})
	s.AddBinary(Binary{MD5: mdA, Size: 10, OriginalFilename: "setup.exe"})
	s.AddBinary(Binary{MD5: mdB, Size: 10, OriginalFilename: "tool.exe"})
	q := queryReport("q1", 40, 1, "q=original_filename%3Asetup.exe")
	other := report("r1", 10, 1, mdE)
	fs := newFeedServer(t, feedDoc(t, q))
	id := createFeed(t, s, fs.URL, nil)
	syncFeed(t, s, id, false)
	tagged := func() []string {
		return searchAll(t, s, "alliance_score_virustotalconnector:*", "md5 asc")
	}
	if got := tagged(); !slices.Equal(got, []string{mdA}) {
		t.Fatalf("tagged %v after the first sync, want A", got)
	}

	s.AddBinary(Binary{MD5: mdC, Size: 10, OriginalFilename: "setup.exe"}) // new, matches
	s.AddBinary(Binary{MD5: mdA, Size: 10, OriginalFilename: "other.exe"}) // updated, no longer matches
	s.AddBinary(Binary{MD5: mdB, Size: 10, OriginalFilename: "setup.exe"}) // updated, now matches
	s.AddBinary(Binary{MD5: mdB, Size: 10, OriginalFilename: "tool.exe"})  // and back
	if got := tagged(); !slices.Equal(got, []string{mdA}) {
		t.Errorf("tagged %v before the next sync, want A still", got)
	}
	fs.set(feedDoc(t, q, other)) // the query report itself is unchanged
	syncFeed(t, s, id, false)
	if got := tagged(); !slices.Equal(got, []string{mdC}) {
		t.Errorf("tagged %v after the next sync, want C", got)
	}
	requireRebuiltIndexes(t, s, id, "after the catch-up")
}

// feedScenario drives a feed through random changes: reports added,
// re-timestamped with other IOCs, changed without a new timestamp,
// withdrawn; binaries added and updated between syncs.
type feedScenario struct {
	rng     *rand.Rand
	reports map[string]map[string]any
	ts      int64
}

var scenarioNames = []string{"setup.exe", "tool.exe", "agent.exe", "helper.dll"}

var scenarioQueries = [][]string{
	{"q=original_filename%3Asetup.exe"},
	{"cb.urlver=1&cb.q.original_filename=tool.exe"},
	{"q=original_filename%3Aagent.exe%20OR%20original_filename%3Asetup.exe", "q=company_name%3Acontoso"},
	{"q=nosuchfield%3Ax"}, // unsupported by the simulator: a warning
}

func scenarioMD5(i int) string { return fmt.Sprintf("%032X", 0xabc000+i) }

func (sc *feedScenario) binary(s *Server) {
	i := sc.rng.IntN(40)
	b := Binary{MD5: scenarioMD5(i), Size: 10, OriginalFilename: scenarioNames[sc.rng.IntN(len(scenarioNames))]}
	if i%3 == 0 {
		b.SHA256 = sha(i)
	}
	if sc.rng.IntN(2) == 0 {
		b.CompanyName = "Contoso"
	}
	s.AddBinary(b)
}

func (sc *feedScenario) report(id string) map[string]any {
	sc.ts++
	if sc.rng.IntN(5) == 0 {
		return queryReport(id, sc.rng.IntN(101), sc.ts, scenarioQueries[sc.rng.IntN(len(scenarioQueries))]...)
	}
	iocs := map[string]any{}
	var md5s []string
	for range 1 + sc.rng.IntN(3) { // duplicates and either case on purpose
		m := scenarioMD5(sc.rng.IntN(50))
		if sc.rng.IntN(2) == 0 {
			m = strings.ToLower(m)
		}
		md5s = append(md5s, m)
	}
	iocs["md5"] = md5s
	if sc.rng.IntN(3) == 0 {
		iocs["sha256"] = []string{strings.ToUpper(sha(3 * sc.rng.IntN(14)))}
	}
	r := report(id, sc.rng.IntN(101), sc.ts)
	r["iocs"] = iocs
	return r
}

// step changes a few reports and returns the document.
func (sc *feedScenario) step(t *testing.T) []byte {
	for range 1 + sc.rng.IntN(6) {
		id := fmt.Sprintf("r%02d", sc.rng.IntN(30))
		switch old, ok := sc.reports[id]; {
		case !ok || sc.rng.IntN(2) == 0:
			sc.reports[id] = sc.report(id)
		case sc.rng.IntN(2) == 0:
			old["score"] = sc.rng.IntN(101) // same timestamp: only a full sync takes it
		default:
			delete(sc.reports, id)
		}
	}
	var rs []map[string]any
	for _, id := range slices.Sorted(maps.Keys(sc.reports)) {
		rs = append(rs, sc.reports[id])
	}
	return feedDoc(t, rs...)
}

func TestIncrementalSyncsKeepTheIndexesOfAFullRebuild(t *testing.T) {
	s := newServer(t, Config{})
	sc := &feedScenario{rng: rand.New(rand.NewPCG(7, 11)), reports: map[string]map[string]any{}}
	for range 20 {
		sc.binary(s)
	}
	fs := newFeedServer(t, sc.step(t))
	id := createFeed(t, s, fs.URL, nil)
	var warned, hit bool // what the scenario exercised
	for round := range 60 {
		fs.set(sc.step(t))
		for range sc.rng.IntN(4) {
			sc.binary(s)
		}
		full := round%10 == 9
		syncFeed(t, s, id, full)
		requireRebuiltIndexes(t, s, id, fmt.Sprintf("round %d (full %v)", round, full))
		s.mu.Lock()
		for _, h := range s.feeds[id].queries {
			warned = warned || h.query.err != ""
			hit = hit || len(h.query.hits) > 0
		}
		s.mu.Unlock()
	}

	got := indexesOf(t, s, id)
	s.mu.Lock()
	s.index(s.feeds[id])
	s.mu.Unlock()
	if diff := cmp.Diff(indexesOf(t, s, id), got, cmp.AllowUnexported(feedIndexes{})); diff != "" {
		t.Errorf("indexes differ from s.index of the feed (-rebuild +kept):\n%s", diff)
	}
	if len(got.byMD5) == 0 || len(got.bySHA) == 0 || !warned || !hit {
		t.Errorf("the scenario did not exercise every index: %d md5s, %d sha256s, warnings %v, query hits %v", len(got.byMD5), len(got.bySHA), warned, hit)
	}
}

// TestConcurrentSyncsBinariesAndSearchesKeepTheIndexesConsistent runs
// syncs of one feed (incremental and full), binary updates and searches at
// once; with -race it checks what the syncs read without s.mu.
func TestConcurrentSyncsBinariesAndSearchesKeepTheIndexesConsistent(t *testing.T) {
	s := newServer(t, Config{})
	sc := &feedScenario{rng: rand.New(rand.NewPCG(3, 5)), reports: map[string]map[string]any{}}
	for range 20 {
		sc.binary(s)
	}
	fs := newFeedServer(t, sc.step(t))
	id := createFeed(t, s, fs.URL, nil)
	docs := make([][]byte, 8)
	for i := range docs {
		docs[i] = sc.step(t)
	}
	binaries := make([]Binary, 30)
	for i := range binaries {
		binaries[i] = Binary{MD5: scenarioMD5(i % 40), Size: 10, OriginalFilename: scenarioNames[i%len(scenarioNames)]}
	}

	// t.Fatal only on the test goroutine: the others report with Errorf
	expect := func(method, path string, body any) {
		resp := call(t, s, method, path, body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s: status %d", method, path, resp.StatusCode)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range docs {
				if g == 0 {
					fs.set(docs[i])
				}
				expect(http.MethodPost, fmt.Sprintf("/api/v1/feed/%d/synchronize", id), map[string]bool{"full_sync": (g+i)%3 == 0})
			}
		})
	}
	wg.Go(func() {
		for _, b := range binaries {
			s.AddBinary(b)
		}
	})
	wg.Go(func() {
		for range 20 {
			expect(http.MethodGet, "/api/v1/binary?"+url.Values{"q": {"alliance_score_virustotalconnector:*"}, "rows": {"100"}}.Encode(), nil)
		}
	})
	wg.Wait()
	syncFeed(t, s, id, false) // catches up with the last binaries
	requireRebuiltIndexes(t, s, id, "after the concurrent syncs")
}

func TestUpdatedBinariesKeepTheirPlace(t *testing.T) {
	s := newServer(t, Config{})
	for i, m := range []string{mdA, mdB, mdC} {
		s.AddBinary(Binary{MD5: m, Size: 10, ServerAdded: t0.Add(-time.Duration(i) * time.Hour), OriginalFilename: "old.exe"})
	}
	s.AddBinary(Binary{MD5: mdB, Size: 10, OriginalFilename: "new.exe"})
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.binaries[mdB]
	if s.order[rec.pos] != rec || s.order[1] != rec || !slices.Contains(s.byAdded, rec) || rec.doc["original_filename"] != "new.exe" {
		t.Errorf("the update is not where the binary was: order %v", s.order)
	}
	if n := len(s.journal); n != 4 || s.journal[3] != rec {
		t.Errorf("journal has %d entries, want the 3 binaries and the update", n)
	}
	if len(s.byAdded) != 3 || !slices.IsSortedFunc(s.byAdded, func(a, b *record) int { return a.added.Compare(b.added) }) {
		t.Errorf("byAdded has %d binaries, in order %v", len(s.byAdded), s.byAdded)
	}
}
