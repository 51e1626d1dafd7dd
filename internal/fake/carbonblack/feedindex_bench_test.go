package carbonblack

import (
	"fmt"
	"testing"
	"time"
)

// benchHeld is how many reports the benchmarked feed holds.
const benchHeld = 100_000

// benchFeed registers a feed holding benchHeld reports with one md5 IOC
// each (the connector's feed), queries of them being "modules" query IOCs,
// on a server with binaries binaries; it returns the feed and its document.
func benchFeed(b *testing.B, binaries, queries int) (*Server, *feed, []Report) {
	b.Helper()
	s := New(Config{Now: fixedNow})
	benchBinaries(s, 0, binaries)
	f := &feed{pub: Feed{ID: 1, Enabled: true}, held: map[string]*heldReport{}}
	f.byMD5, f.bySHA, f.queries = indexHeld(f.held)
	s.feeds[1] = f
	reports := make([]Report, benchHeld)
	for i := range reports {
		reports[i] = Report{ID: fmt.Sprintf("r%07d", i), Title: "t", Link: "l", Score: 50, Timestamp: 1, MD5: []string{fmt.Sprintf("%032X", i)}}
		if i < queries {
			q := fmt.Sprintf("cb.q.original_filename=%s", synthNames[i%len(synthNames)].file)
			reports[i].MD5, reports[i].Query = nil, &QueryIOC{IndexType: "modules", SearchQuery: []string{q}}
		}
	}
	benchSync(s, f, reports, true)
	return s, f, reports
}

// benchBinaries adds the binaries from, from+1, ... (n of them), named
// after the synthetic ones.
func benchBinaries(s *Server, from, n int) {
	for i := from; i < from+n; i++ {
		s.AddBinary(Binary{MD5: fmt.Sprintf("%032X", 1<<40+i), Size: 10, OriginalFilename: synthNames[i%len(synthNames)].file})
	}
}

// benchSync synchronises f with the document reports, as handleFeedSync
// does after the fetch; it returns how long s.mu was held.
func benchSync(s *Server, f *feed, reports []Report, full bool) time.Duration {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	p := s.planSync(f, parsedFeed{reports: reports}, fetchResult{}, full)
	start := time.Now()
	s.mu.Lock()
	s.applySync(f, p)
	s.mu.Unlock()
	return time.Since(start)
}

// BenchmarkIncrementalSync applies incremental syncs that change one of
// 100,000 held reports (a new timestamp and md5). locked-ns/op is how long
// s.mu is held, what binary searches wait for; ns/op adds the work done
// without it. "with queries": 100 of the reports are "modules" query IOCs
// over 10,000 binaries, and 10 binaries arrive before each sync.
func BenchmarkIncrementalSync(b *testing.B) {
	for _, bc := range []struct {
		name                        string
		binaries, queries, arriving int
	}{
		{"md5 IOCs", 1_000, 0, 0},
		{"with queries", 10_000, 100, 10},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, f, reports := benchFeed(b, bc.binaries, bc.queries)
			changed := &reports[benchHeld/2]
			var locked time.Duration
			for i := 0; b.Loop(); i++ {
				benchBinaries(s, bc.binaries+i*bc.arriving, bc.arriving)
				changed.Timestamp, changed.MD5 = int64(i+2), []string{fmt.Sprintf("%032X", benchHeld+i)}
				locked += benchSync(s, f, reports, false)
			}
			b.ReportMetric(float64(locked.Nanoseconds())/float64(b.N), "locked-ns/op")
		})
	}
}

// BenchmarkFullSync is BenchmarkIncrementalSync's first case with full
// syncs: comparing and indexing the 100,000 reports happens without s.mu.
func BenchmarkFullSync(b *testing.B) {
	s, f, reports := benchFeed(b, 1_000, 0)
	changed := &reports[benchHeld/2]
	var locked time.Duration
	for i := 0; b.Loop(); i++ {
		changed.Timestamp, changed.MD5 = int64(i+2), []string{fmt.Sprintf("%032X", benchHeld+i)}
		locked += benchSync(s, f, reports, true)
	}
	b.ReportMetric(float64(locked.Nanoseconds())/float64(b.N), "locked-ns/op")
}
