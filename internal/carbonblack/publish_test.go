package carbonblack

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vtconnector/vtconnector/internal/store"
)

// memResults is an in-memory resultLister that counts the verdicts read.
type memResults struct {
	mu   sync.Mutex
	rs   map[string]store.Result
	read int
}

// testPublisher is a publisher of m's verdicts into a new feed cache,
// told the time by *clock.
func testPublisher(m *memResults, sy syncer, log *slog.Logger, clock *time.Time) (*Publisher, *FeedCache) {
	cache := NewFeedCache()
	p := NewPublisher(m, cache, DefaultFeedInfo(), FeedOptions{}, sy, log)
	p.now = func() time.Time { return *clock }
	return p, cache
}

func (m *memResults) put(t *testing.T, v Verdict, at time.Time) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rs[v.MD5] = store.Result{Key: v.MD5, Value: b, UpdatedAt: at}
}

func (m *memResults) sorted() []store.Result {
	out := make([]store.Result, 0, len(m.rs))
	for _, r := range m.rs {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b store.Result) int {
		return cmp.Or(a.UpdatedAt.Compare(b.UpdatedAt), strings.Compare(a.Key, b.Key))
	})
	return out
}

func (m *memResults) ListResultsChanged(_ context.Context, _ string, pos store.ResultsAfter, limit int) ([]store.Result, store.ResultsAfter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Result
	for _, r := range m.sorted() {
		if c := r.UpdatedAt.Compare(pos.At); (pos != store.ResultsAfter{}) && (c < 0 || c == 0 && r.Key <= pos.Key) {
			continue
		}
		out = append(out, r)
		if len(out) == limit {
			break
		}
	}
	m.read += len(out)
	if len(out) > 0 {
		pos = store.ResultsAfter{At: out[len(out)-1].UpdatedAt, Key: out[len(out)-1].Key}
	}
	return out, pos, nil
}

func (m *memResults) ListResultsByKey(_ context.Context, _ string, from string, back bool, limit int) ([]store.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if back {
		panic("memResults: backward listing not implemented")
	}
	keys := slices.Sorted(maps.Keys(m.rs))
	var out []store.Result
	for _, k := range keys {
		if k > from && len(out) < limit {
			out = append(out, m.rs[k])
		}
	}
	m.read += len(out)
	return out, nil
}

func (m *memResults) RecentResults(_ context.Context, _ string, n int) ([]store.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sorted()
	slices.Reverse(s)
	return s[:min(n, len(s))], nil
}

// syncs records the sync requests.
type syncs struct{ full []bool }

func (s *syncs) MarkDirty(full bool) { s.full = append(s.full, full) }

func detected(md5 string, positives int) Verdict {
	return Verdict{MD5: md5, Found: true, Positives: positives, Total: 70, Link: "https://www.virustotal.com/gui/file/" + strings.ToLower(md5)}
}

func feedIDsOf(t *testing.T, c *FeedCache) []string {
	t.Helper()
	var f Feed
	if err := json.Unmarshal(c.Current().Body(), &f); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range f.Reports {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestPublisherReadsOnlyWhatChanged: after the first refresh, a refresh
// reads the verdicts that changed (and those of the overlap window), not
// every verdict; it renders and asks for a sync only when a report
// changed, a full one when a report was withdrawn.
func TestPublisherReadsOnlyWhatChanged(t *testing.T) {
	ctx := t.Context()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := &memResults{rs: map[string]store.Result{}}
	for i := range 500 {
		v := detected(strings.ToUpper(strings.Repeat("0", 28)+string(rune('a'+i%6))+twoHex(i)), 1+i%3)
		if i%2 == 1 {
			v.Positives = 0 // clean: no report
		}
		m.put(t, v, clock.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	sy := &syncs{}
	p, cache := testPublisher(m, sy, slog.New(slog.DiscardHandler), &clock)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := cache.Current().Reports; n != 250 || len(sy.full) != 0 {
		t.Fatalf("first render: %d reports, syncs %v; want 250 and none", n, sy.full)
	}

	// One new detection.
	clock = clock.Add(time.Minute)
	m.put(t, detected("F0000000000000000000000000000001", 9), clock)
	m.read = 0
	snap := cache.Current()
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// The change and the verdicts of the overlap window before the last
	// one seen (one a second).
	if m.read > 1+int(changeOverlap/time.Second)+1 {
		t.Errorf("%d verdicts read for one change", m.read)
	}
	if ids := feedIDsOf(t, cache); !slices.Contains(ids, "Binary_F0000000000000000000000000000001") || len(ids) != 251 {
		t.Errorf("new detection not in the feed (%d reports)", len(ids))
	}
	if cache.Current() == snap || len(sy.full) != 1 || sy.full[0] {
		t.Errorf("new report: re-rendered %v, syncs %v; want a render and one incremental sync", cache.Current() != snap, sy.full)
	}

	// Nothing changed: no render, no sync.
	clock = clock.Add(time.Minute)
	snap = cache.Current()
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if cache.Current() != snap || len(sy.full) != 1 {
		t.Errorf("no change: re-rendered %v, syncs %v", cache.Current() != snap, sy.full)
	}

	// The detection turns clean: withdrawn, full sync.
	clock = clock.Add(time.Minute)
	v := detected("F0000000000000000000000000000001", 0)
	m.put(t, v, clock)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := feedIDsOf(t, cache); slices.Contains(ids, "Binary_F0000000000000000000000000000001") || len(ids) != 250 {
		t.Errorf("withdrawn report still in the feed (%d reports)", len(ids))
	}
	if len(sy.full) != 2 || !sy.full[1] {
		t.Errorf("syncs %v; want a full sync after a withdrawal", sy.full)
	}

	// A verdict that committed late, within the overlap, is read.
	m.put(t, detected("F0000000000000000000000000000002", 3), clock.Add(-changeOverlap/2))
	clock = clock.Add(time.Second)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := feedIDsOf(t, cache); !slices.Contains(ids, "Binary_F0000000000000000000000000000002") {
		t.Error("a verdict stored late (within the overlap) is missing")
	}
	// One later than the overlap waits for the full read.
	m.put(t, detected("F0000000000000000000000000000003", 3), clock.Add(-time.Hour))
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(fullEvery)
	m.read = 0
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := feedIDsOf(t, cache); !slices.Contains(ids, "Binary_F0000000000000000000000000000003") {
		t.Error("the full read missed a verdict")
	}
	if m.read < 500 {
		t.Errorf("full read read %d verdicts", m.read)
	}
}

func twoHex(i int) string {
	const hex = "0123456789ABCDEF"
	return string([]byte{hex[i>>8&15], hex[i>>4&15], hex[i&15]})
}

// TestPublisherLeavesOutForeignKeys: a verdict stored under another key
// than its MD5 in upper case (a damaged or foreign row) makes no report,
// in the whole read and in the reads of changes, and is named in a
// warning; the others are published.
func TestPublisherLeavesOutForeignKeys(t *testing.T) {
	ctx := t.Context()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := &memResults{rs: map[string]store.Result{}}
	m.put(t, detected("A0000000000000000000000000000001", 5), clock)
	foreign := func(key, md5 string) {
		b, _ := json.Marshal(detected(md5, 5))
		m.rs[key] = store.Result{Key: key, Value: b, UpdatedAt: clock}
	}
	foreign("a0000000000000000000000000000002", "a0000000000000000000000000000002") // lower case
	foreign("B0000000000000000000000000000003", "C0000000000000000000000000000003") // another binary's
	var logs strings.Builder
	p, cache := testPublisher(m, &syncs{}, slog.New(slog.NewTextHandler(&logs, nil)), &clock)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := feedIDsOf(t, cache); !slices.Equal(ids, []string{"Binary_A0000000000000000000000000000001"}) {
		t.Errorf("whole read: feed holds %v", ids)
	}
	clock = clock.Add(time.Minute)
	foreign("D0000000000000000000000000000004", "d0000000000000000000000000000005")
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := feedIDsOf(t, cache); len(ids) != 1 {
		t.Errorf("read of changes: feed holds %v", ids)
	}
	for _, key := range []string{"a0000000000000000000000000000002", "B0000000000000000000000000000003", "D0000000000000000000000000000004"} {
		if !strings.Contains(logs.String(), "key="+key) {
			t.Errorf("no warning names key %s:\n%s", key, logs.String())
		}
	}
}

// TestPublisherTakesEachVersionOnce: the overlap a refresh reads again
// (for late commits) does not make it take the versions it already took;
// a new version of a verdict, even written at the same instant, is taken.
func TestPublisherTakesEachVersionOnce(t *testing.T) {
	ctx := t.Context()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := &memResults{rs: map[string]store.Result{}}
	m.put(t, detected("A0000000000000000000000000000001", 5), clock)
	p, cache := testPublisher(m, &syncs{}, slog.New(slog.DiscardHandler), &clock)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // one new verdict a second: each refresh's overlap holds up to 5 read before
		clock = clock.Add(time.Second)
		m.put(t, detected(fmt.Sprintf("B%031X", i), 5), clock)
		m.read = 0
		if err := p.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if p.taken != i+1 {
			t.Fatalf("after %d new verdicts, %d versions taken", i+1, p.taken)
		}
		if i >= 5 && m.read < 5 {
			t.Fatalf("refresh %d read %d verdicts: the overlap is not read again", i, m.read)
		}
	}
	// A new version written at the same instant as the one taken.
	m.put(t, detected(fmt.Sprintf("B%031X", 9), 9), clock)
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p.taken != 11 || len(p.seen) > 6 {
		t.Errorf("%d versions taken (want 11), %d remembered (want at most the overlap's 6)", p.taken, len(p.seen))
	}
	var f Feed
	if err := json.Unmarshal(cache.Current().Body(), &f); err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Reports {
		if r.ID == fmt.Sprintf("Binary_B%031X", 9) && r.Score != BuildReports([]Verdict{detected(fmt.Sprintf("B%031X", 9), 9)}, FeedOptions{})[0].Score {
			t.Errorf("the new version's report has score %d", r.Score)
		}
	}
}

// TestPublisherWaiting: the changes read ahead of a refresh (to space
// refreshes by what waits) are counted, kept, and published by the next
// refresh, each version taken once.
func TestPublisherWaiting(t *testing.T) {
	ctx := t.Context()
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := &memResults{rs: map[string]store.Result{}}
	m.put(t, detected("A0000000000000000000000000000001", 5), clock)
	p, cache := testPublisher(m, &syncs{}, slog.New(slog.DiscardHandler), &clock)
	if k, err := p.waiting(ctx); err != nil || k != -1 {
		t.Fatalf("before the first refresh: waiting %d, %v; want -1 (a whole read)", k, err)
	}
	if err := p.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if k, err := p.waiting(ctx); err != nil || k != 0 {
		t.Fatalf("nothing changed: waiting %d, %v", k, err)
	}
	clock = clock.Add(time.Second)
	for i := range 3 {
		m.put(t, detected(fmt.Sprintf("B%031X", i), 5), clock)
	}
	if k, err := p.waiting(ctx); err != nil || k != 3 {
		t.Fatalf("3 new verdicts: waiting %d, %v", k, err)
	}
	m.put(t, detected(fmt.Sprintf("B%031X", 3), 5), clock)
	if k, err := p.waiting(ctx); err != nil || k != 4 {
		t.Fatalf("one more: waiting %d, %v", k, err)
	}
	if got := cache.Current().Reports; got != 1 {
		t.Fatalf("the feed holds %d reports before the refresh, want 1", got)
	}
	_, n, err := p.refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 || cache.Current().Reports != 5 || p.taken != 4 {
		t.Errorf("refresh handled %d changes (want 4), feed holds %d reports (want 5), %d versions taken (want 4)", n, cache.Current().Reports, p.taken)
	}
	if k, err := p.waiting(ctx); err != nil || k != 0 {
		t.Errorf("after the refresh: waiting %d, %v", k, err)
	}
	clock = clock.Add(fullEvery)
	if k, err := p.waiting(ctx); err != nil || k != -1 {
		t.Errorf("a whole read due: waiting %d, %v; want -1", k, err)
	}
}

func TestRefreshWait(t *testing.T) {
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const debounce = 500 * time.Millisecond
	for _, c := range []struct {
		after, took time.Duration // since the last refresh ended; its duration
		load        float64
		want        time.Duration
	}{
		{time.Second, 10 * time.Millisecond, 1, 0},                                 // after a quiet spell: at once
		{0, 10 * time.Millisecond, 1, debounce},                                    // right after a quick refresh: the debounce
		{200 * time.Millisecond, 10 * time.Millisecond, 1, 300 * time.Millisecond}, // partway: the rest of it
		{0, 2 * time.Second, 1, 4 * time.Second},                                   // as busy as the last, slow one: twice its duration from its end
		{3 * time.Second, 2 * time.Second, 1, time.Second},                         // partway
		{debounce, 2 * time.Second, 0.01, 0},                                       // the changes have nearly stopped: the debounce alone
		{time.Second, 2 * time.Second, 0.5, time.Second},                           // half the rate: twice half its duration
		{10 * time.Second, 2 * time.Second, 1, 0},                                  // long after a slow one: at once
	} {
		if got := refreshWait(end.Add(c.after), end, c.took, c.load, debounce); got != c.want {
			t.Errorf("%s after a refresh of %s, load %.2f: wait %s, want %s", c.after, c.took, c.load, got, c.want)
		}
	}
}

func TestChangeLoad(t *testing.T) {
	for _, c := range []struct {
		n     int
		cycle time.Duration
		k     int
		since time.Duration
		want  float64
	}{
		{500, 2 * time.Second, 250, time.Second, 1},                   // the same rate
		{500, 2 * time.Second, 500, time.Second, 1},                   // faster: capped
		{500, 2 * time.Second, 125, time.Second, 0.5},                 // half the rate
		{500, 2 * time.Second, 1, 1300 * time.Millisecond, 1.0 / 325}, // a backlog drained: one change
		{500, 2 * time.Second, 0, time.Second, 0},
		{0, 2 * time.Second, 10, time.Second, 1},   // the last handled none (a failure)
		{500, 0, 10, time.Second, 1},               // the first incremental refresh: no cycle before
		{500, 2 * time.Second, -1, time.Second, 1}, // a whole read next
	} {
		if got := changeLoad(c.n, c.cycle, c.k, c.since); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%d changes over %s, %d over %s: load %.4f, want %.4f", c.n, c.cycle, c.k, c.since, got, c.want)
		}
	}
}
