package carbonblack

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFeedCacheRender(t *testing.T) {
	c := newFixedFeedCache()
	if c.Current() != nil {
		t.Fatal("Current before the first render is not nil")
	}
	info := goldenFeedInfo(t)
	if err := c.Render(info, nil); err != nil {
		t.Fatal(err)
	}
	empty := c.Current()
	if !bytes.Contains(empty.Body(), []byte(`"reports":[]}`)) || empty.Reports != 0 {
		t.Errorf("empty feed = %s", empty.Body())
	}
	if errs := ValidateFeedJSON(empty.Body()); errs != nil {
		t.Errorf("empty feed is invalid: %v", errors.Join(errs...))
	}

	reports := BuildReports(goldenVerdicts(), FeedOptions{})
	if err := c.Render(info, reports); err != nil {
		t.Fatal(err)
	}
	s := c.Current()
	if len(s.ETag) != 34 || s.ETag[0] != '"' || s.ETag == empty.ETag {
		t.Errorf("ETag = %s (empty feed's %s), want a new quoted 128-bit hex tag", s.ETag, empty.ETag)
	}
	if s.Size() != int64(len(s.Body())) || s.GzipSize() != int64(len(s.Gzip())) {
		t.Errorf("sizes %d, %d; pieces %d, %d", s.Size(), s.GzipSize(), len(s.Body()), len(s.Gzip()))
	}
	if want := legacyEncodeFeed(t, info, reports); !bytes.Equal(s.Body(), want) {
		t.Errorf("body differs from the whole-feed encoding:\n%s\nwant\n%s", s.Body(), want)
	}
	other := NewFeedCache()
	if err := other.Render(info, reports); err != nil || other.Current().ETag != s.ETag {
		t.Errorf("the same feed rendered by another cache has ETag %s (err %v), want %s", other.Current().ETag, err, s.ETag)
	}
	if s.GzipETag() != strings.TrimSuffix(s.ETag, `"`)+`-gzip"` {
		t.Errorf("GzipETag = %s", s.GzipETag())
	}
	zr, err := gzip.NewReader(bytes.NewReader(s.Gzip()))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, s.Body()) {
		t.Errorf("gzip does not round-trip (err %v)", err)
	}
	if s.Reports != len(reports) || !s.RenderedAt.Equal(fixedRenderClock()) {
		t.Errorf("Reports %d RenderedAt %v", s.Reports, s.RenderedAt)
	}

	t.Run("unchanged content keeps the snapshot", func(t *testing.T) {
		c.now = func() time.Time { return fixedRenderClock().Add(time.Hour) }
		if err := c.Render(info, BuildReports(goldenVerdicts(), FeedOptions{})); err != nil {
			t.Fatal(err)
		}
		if c.Current() != s {
			t.Error("an identical render replaced the snapshot")
		}
	})
	t.Run("invalid feed is refused and the old one kept", func(t *testing.T) {
		bad := append([]Report(nil), reports...)
		bad[0].Title = "two\nlines"
		err := c.Render(info, bad)
		var fe *FeedError
		if !errors.As(err, &fe) || fe.Field != "title" {
			t.Errorf("Render error = %v, want a title FeedError", err)
		}
		if c.Current() != s {
			t.Error("a refused render replaced the snapshot")
		}
	})
	t.Run("a change gets a new snapshot", func(t *testing.T) {
		if err := c.Render(info, reports[:1]); err != nil {
			t.Fatal(err)
		}
		n := c.Current()
		if n == s || n.ETag == s.ETag || n.Reports != 1 || !n.RenderedAt.Equal(fixedRenderClock().Add(time.Hour)) {
			t.Errorf("new snapshot %+v", n)
		}
	})
}

// BenchmarkUpdate100k measures one change to a 100,000-report feed: one
// report changed (validated, encoded), its chunk re-rendered (joined,
// compressed, hashed), and a new snapshot swapped in.
func BenchmarkUpdate100k(b *testing.B) {
	reports := BuildReports(syntheticVerdicts(100_000), FeedOptions{IncludeSHA256: true})
	info := DefaultFeedInfo()
	c := NewFeedCache()
	if err := c.Render(info, reports); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := reports[(i*7919)%len(reports)]
		r.Score = 1 + i%100
		r.Timestamp += int64(i + 1)
		if err := c.Update(info, map[string]*Report{r.ID: &r}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(c.chunks)), "chunks")
}

// BenchmarkRender100k measures one render of a 100,000-report feed into
// an empty cache: validation, JSON encoding, and every chunk compressed
// and hashed.
func BenchmarkRender100k(b *testing.B) {
	reports := BuildReports(syntheticVerdicts(100_000), FeedOptions{IncludeSHA256: true})
	info := DefaultFeedInfo()
	var last *FeedSnapshot
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c := NewFeedCache() // a fresh cache, so that no render is skipped as unchanged
		if err := c.Render(info, reports); err != nil {
			b.Fatal(err)
		}
		last = c.Current()
	}
	b.ReportMetric(float64(len(last.Body()))/1e6, "body-MB")
	b.ReportMetric(float64(len(last.Gzip()))/1e6, "gzip-MB")
	b.ReportMetric(feedCacheHeldMB(b, info, reports), "cache-MB")
}

// BenchmarkRerender100k measures a whole render of a 100,000-report
// feed over the same feed already rendered (the re-read every 15 minutes
// when nothing changed): validation, JSON encoding, and every report
// compared with the one held.
func BenchmarkRerender100k(b *testing.B) {
	reports := BuildReports(syntheticVerdicts(100_000), FeedOptions{IncludeSHA256: true})
	info := DefaultFeedInfo()
	c := NewFeedCache()
	if err := c.Render(info, reports); err != nil {
		b.Fatal(err)
	}
	s := c.Current()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Render(info, reports); err != nil {
			b.Fatal(err)
		}
	}
	if c.Current() != s {
		b.Fatal("an unchanged render replaced the snapshot")
	}
}

// feedCacheHeldMB is the heap a cache holding reports keeps (after
// collections, pooled buffers let go): what the connector holds between
// renders. It is the live heap with the cache less the live heap once the
// cache is dropped.
func feedCacheHeldMB(b *testing.B, info FeedInfo, reports []Report) float64 {
	b.StopTimer()
	defer b.StartTimer()
	live := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	c := NewFeedCache()
	if err := c.Render(info, reports); err != nil {
		b.Fatal(err)
	}
	with := live()
	runtime.KeepAlive(c)
	c = nil
	without := live()
	runtime.KeepAlive(reports)
	return float64(with-without) / 1e6
}

// legacyEncodeFeed is the feed encoded whole, the way the cache rendered
// it before it kept pieces: the pieces must join into exactly this.
func legacyEncodeFeed(t testing.TB, info FeedInfo, reports []Report) []byte {
	t.Helper()
	sorted := slices.Clone(reports)
	slices.SortFunc(sorted, func(a, b Report) int { return strings.Compare(a.ID, b.ID) })
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	buf.WriteString(`{"feedinfo":`)
	if err := enc.Encode(info); err != nil {
		t.Fatal(err)
	}
	buf.Truncate(buf.Len() - 1)
	buf.WriteString(`,"reports":[`)
	for i := range sorted {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
		if err := enc.Encode(&sorted[i]); err != nil {
			t.Fatal(err)
		}
		buf.Truncate(buf.Len() - 1)
	}
	if len(sorted) > 0 {
		buf.WriteByte('\n')
	}
	buf.WriteString("]}\n")
	return buf.Bytes()
}

// TestFeedCacheIncremental makes random changes (new, changed and
// withdrawn reports, in batches small and large, through Update and
// Render) to a feed large enough to split and join chunks, and checks
// after each that the body is the whole-feed encoding of the reports, that
// the gzip form decompresses to it, that the ETag changes exactly when the
// body does, and that an unchanged feed keeps its snapshot.
func TestFeedCacheIncremental(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	info := DefaultFeedInfo()
	c := NewFeedCache()
	want := map[string]Report{}
	report := func(i int) Report {
		v := Verdict{MD5: fmt.Sprintf("%032x", i*7919), Found: true, Positives: 1 + rng.IntN(60), Total: 70,
			Label: "trojan/" + strconv.Itoa(rng.IntN(1000)), UpdatedAt: time.Unix(1700000000+int64(rng.IntN(1e6)), 0)}
		return BuildReports([]Verdict{v}, FeedOptions{})[0]
	}
	tags := map[string][sha256.Size]byte{} // ETag -> body hash
	type heldSnapshot struct {
		s        *FeedSnapshot
		body, gz []byte
	}
	var held []heldSnapshot
	check := func(step string) {
		t.Helper()
		s := c.Current()
		body := s.Body()
		all := slices.Collect(maps.Values(want))
		if exp := legacyEncodeFeed(t, info, all); !bytes.Equal(body, exp) {
			t.Fatalf("%s: body differs from the whole-feed encoding (%d bytes, want %d)", step, len(body), len(exp))
		}
		if s.Reports != len(want) || s.Size() != int64(len(body)) {
			t.Fatalf("%s: Reports %d Size %d, want %d, %d", step, s.Reports, s.Size(), len(want), len(body))
		}
		zr, err := gzip.NewReader(bytes.NewReader(s.Gzip()))
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		zr.Multistream(false)
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, body) || int64(len(s.Gzip())) != s.GzipSize() {
			t.Fatalf("%s: gzip does not round-trip (err %v)", step, err)
		}
		sum := sha256.Sum256(body)
		if prev, ok := tags[s.ETag]; ok && prev != sum {
			t.Fatalf("%s: ETag %s names two bodies", step, s.ETag)
		}
		tags[s.ETag] = sum
	}
	if err := c.Update(info, nil); err != nil {
		t.Fatal(err)
	}
	check("empty")
	next := 0
	for step := range 60 {
		changes := map[string]*Report{}
		n := 1 + rng.IntN(5)
		if step%10 == 3 {
			n = 1500 // a burst
		}
		for range n {
			switch k := rng.IntN(10); {
			case k < 6 || len(want) == 0: // new
				r := report(next)
				next++
				changes[r.ID] = &r
			case k < 8: // changed
				id := randomKey(rng, want)
				r := want[id]
				r.Score = 1 + rng.IntN(100)
				changes[id] = &r
			default: // withdrawn, sometimes one that is not there
				id := randomKey(rng, want)
				if k == 9 {
					id = "Binary_NOTTHERE" + strconv.Itoa(rng.IntN(5))
				}
				changes[id] = nil
			}
		}
		if step%7 == 6 { // a whole-feed render instead
			for id, r := range changes {
				if r == nil {
					delete(want, id)
				} else {
					want[id] = *r
				}
			}
			if err := c.Render(info, slices.Collect(maps.Values(want))); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := c.Update(info, changes); err != nil {
				t.Fatal(err)
			}
			for id, r := range changes {
				if r == nil {
					delete(want, id)
				} else {
					want[id] = *r
				}
			}
		}
		check(fmt.Sprintf("step %d (%d changes, %d reports, %d chunks)", step, len(changes), len(want), len(c.chunks)))
		for i, ch := range c.chunks {
			if len(ch.ids) == 0 || len(ch.ids) > chunkMax || i > 0 && c.chunks[i-1].ids[len(c.chunks[i-1].ids)-1] >= ch.ids[0] {
				t.Fatalf("step %d: chunk %d of %d holds %d reports, or is out of order", step, i, len(c.chunks), len(ch.ids))
			}
			// Only the compressed form is kept, with no spare capacity.
			if ch.enc != nil || ch.plain != nil || ch.dirty || cap(ch.gz) != len(ch.gz) || len(ch.spans) != len(ch.ids) {
				t.Fatalf("step %d: chunk %d keeps its text (enc %v, plain %v), is dirty (%v), has %d spans for %d reports, or deflate data of cap %d for len %d",
					step, i, ch.enc != nil, ch.plain != nil, ch.dirty, len(ch.spans), len(ch.ids), cap(ch.gz), len(ch.gz))
			}
		}
		if step%15 == 0 {
			s := c.Current()
			held = append(held, heldSnapshot{s, s.Body(), s.Gzip()})
		}
	}
	if len(c.chunks) < 3 {
		t.Errorf("the test feed ended in %d chunks; it should exercise several", len(c.chunks))
	}
	// A snapshot never changes under its readers: the pieces it holds are
	// not touched by the changes after it.
	for i, h := range held {
		if !bytes.Equal(h.s.Body(), h.body) || !bytes.Equal(h.s.Gzip(), h.gz) {
			t.Errorf("held snapshot %d changed after later changes", i)
		}
	}

	t.Run("withdraw everything, then nothing changes", func(t *testing.T) {
		changes := map[string]*Report{}
		for id := range want {
			changes[id] = nil
		}
		if err := c.Update(info, changes); err != nil {
			t.Fatal(err)
		}
		clear(want)
		check("all withdrawn")
		s := c.Current()
		if err := c.Update(info, map[string]*Report{"Binary_00": nil}); err != nil || c.Current() != s {
			t.Errorf("a change that changes nothing: err %v, new snapshot %v", err, c.Current() != s)
		}
	})
	t.Run("an invalid report is refused and nothing changes", func(t *testing.T) {
		s := c.Current()
		good, bad := report(next), report(next+1)
		bad.Title = "two\nlines"
		err := c.Update(info, map[string]*Report{good.ID: &good, bad.ID: &bad})
		var fe *FeedError
		if !errors.As(err, &fe) || fe.Field != "title" || c.Current() != s {
			t.Errorf("Update = %v (want a title FeedError), snapshot replaced %v", err, c.Current() != s)
		}
		if err := c.Update(info, map[string]*Report{"Binary_X": &good}); err == nil {
			t.Error("a report filed under another id was accepted")
		}
		badInfo := info
		badInfo.Name = "not alphanumeric!"
		if err := c.Update(badInfo, nil); err == nil || c.Current() != s {
			t.Errorf("an invalid feedinfo: err %v, snapshot replaced %v", err, c.Current() != s)
		}
		if err := NewFeedCache().Update(badInfo, nil); err == nil {
			t.Error("an invalid feedinfo accepted by a new cache")
		}
	})
}

func randomKey(rng *rand.Rand, m map[string]Report) string {
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) == 0 {
		return "Binary_NONE"
	}
	return keys[rng.IntN(len(keys))]
}

func TestCRC32Combine(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 64, 1000, 100_000} {
		a, b := make([]byte, rng.IntN(5000)), make([]byte, n)
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), crc32Shift(int64(len(b))))
		if want := crc32.ChecksumIEEE(slices.Concat(a, b)); got != want {
			t.Errorf("combine of %d and %d bytes = %08x, want %08x", len(a), n, got, want)
		}
	}
}

// TestFeedCacheRerender feeds rerender (the publisher's whole re-read)
// streams of reports, mostly in id order with some out of order and some
// ids repeated (a later one wins), against caches empty and full, and
// checks each time that the body is the whole-feed encoding of the
// reports, that it counts what changed and what was withdrawn, that a
// failed walk or an invalid report changes nothing, and that an
// unchanged feed keeps its snapshot.
func TestFeedCacheRerender(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	info := DefaultFeedInfo()
	report := func(i, score int) Report {
		v := Verdict{MD5: fmt.Sprintf("%032X", i*7919), Found: true, Positives: 1 + score%60, Total: 70,
			Label: "trojan/" + strconv.Itoa(score), UpdatedAt: time.Unix(1700000000+int64(score), 0)}
		return BuildReports([]Verdict{v}, FeedOptions{})[0]
	}
	// stream emits want's reports in id order, except that some come
	// late, and some are emitted first with other content and again
	// later with theirs.
	stream := func(want map[string]Report) func(emit func(*Report)) error {
		ids := slices.Sorted(maps.Keys(want))
		var late []Report
		return func(emit func(*Report)) error {
			for _, id := range ids {
				r := want[id]
				switch k := rng.IntN(50); {
				case k == 0:
					late = append(late, r)
					continue
				case k == 1:
					decoy := r
					decoy.Score = 1 + (r.Score+1)%100
					emit(&decoy)
					late = append(late, r)
					continue
				}
				emit(&r)
			}
			for i := range late {
				emit(&late[i])
			}
			return nil
		}
	}
	c := NewFeedCache()
	want := map[string]Report{}
	next := 0
	for step := range 12 {
		before := maps.Clone(want)
		changed, withdrawn := 0, 0
		switch {
		case step == 0: // an empty feed
		case step == 1 || step == 8: // many new reports (8: into a full cache)
			for range 3000 {
				r := report(next, rng.IntN(1000))
				next++
				want[r.ID] = r
			}
		case step == 5: // nothing changes
		case step == 10: // everything withdrawn
			clear(want)
		default:
			for range 1 + rng.IntN(300) {
				switch k := rng.IntN(3); {
				case k == 0 || len(want) == 0:
					r := report(next, rng.IntN(1000))
					next++
					want[r.ID] = r
				case k == 1:
					id := randomKey(rng, want)
					r := want[id]
					r.Score = 1 + (r.Score+7)%100
					want[id] = r
				default:
					delete(want, randomKey(rng, want))
				}
			}
		}
		for id, r := range want {
			if old, ok := before[id]; !ok || !reflect.DeepEqual(old, r) {
				changed++
			}
		}
		for id := range before {
			if _, ok := want[id]; !ok {
				withdrawn++
			}
		}
		snap := c.Current()
		fc, err := c.rerender(info, true, stream(want))
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if exp := legacyEncodeFeed(t, info, slices.Collect(maps.Values(want))); !bytes.Equal(c.Current().Body(), exp) {
			t.Fatalf("step %d: body differs from the whole-feed encoding (%d bytes, want %d)", step, len(c.Current().Body()), len(exp))
		}
		if step > 0 && (fc.changed != changed || fc.withdrawn != withdrawn) {
			t.Errorf("step %d: counted %d changed, %d withdrawn; want %d, %d", step, fc.changed, fc.withdrawn, changed, withdrawn)
		}
		if step > 0 && changed+withdrawn == 0 && c.Current() != snap {
			t.Errorf("step %d: nothing changed but the snapshot was replaced", step)
		}
		if c.Current().Reports != len(want) {
			t.Errorf("step %d: %d reports, want %d", step, c.Current().Reports, len(want))
		}
	}
	for range 2000 {
		r := report(next, rng.IntN(1000))
		next++
		want[r.ID] = r
	}
	if _, err := c.rerender(info, true, stream(want)); err != nil {
		t.Fatal(err)
	}
	snap, body := c.Current(), c.Current().Body()

	t.Run("a failed walk changes nothing", func(t *testing.T) {
		boom := errors.New("store gone")
		_, err := c.rerender(info, true, func(emit func(*Report)) error {
			for i := range 100 {
				r := report(next+i, 1)
				emit(&r)
			}
			return boom
		})
		if !errors.Is(err, boom) || c.Current() != snap || !bytes.Equal(c.Current().Body(), body) {
			t.Errorf("err %v; snapshot replaced %v", err, c.Current() != snap)
		}
	})
	t.Run("an invalid report is refused and nothing changes", func(t *testing.T) {
		_, err := c.rerender(info, true, func(emit func(*Report)) error {
			for _, id := range slices.Sorted(maps.Keys(want)) {
				r := want[id]
				if id == slices.Max(slices.Collect(maps.Keys(want))) {
					r.Title = "two\nlines"
				}
				emit(&r)
			}
			return nil
		})
		var fe *FeedError
		if !errors.As(err, &fe) || fe.Field != "title" || c.Current() != snap {
			t.Errorf("err %v (want a title FeedError); snapshot replaced %v", err, c.Current() != snap)
		}
	})
}
