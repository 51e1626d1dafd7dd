package carbonblack

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The feed is kept rendered in pieces, so that a change costs work in
// proportion to what changed, not to the whole feed:
//
//   - the head, {"feedinfo":{...},"reports":[
//   - the reports, sorted by id, in chunks of chunkMin to chunkMax reports;
//     a chunk's text is its reports joined the way the document joins them
//     ("\n" before the feed's first report, ",\n" before every other),
//     compressed on its own;
//   - the tail, "\n]}\n" ("]}\n" when there is no report).
//
// Only the compressed form of a chunk is kept (with its report ids and
// where each report's JSON lies in its text), so that the cache holds
// about a tenth of the feed's size. A change re-encodes the reports it
// brings, decompresses the chunks that hold them, splices, and
// recompresses them into new pieces. The body is the pieces in order. The gzip form is
// one gzip member: a header, each piece's deflate data, then the trailer.
// Each piece is compressed by a fresh compressor ended by a sync flush
// (byte-aligned, not final; the tail's ends with the final block), so the
// pieces' deflate data concatenate into one valid stream; the trailer's
// CRC-32 is combined from the pieces' CRCs, and the strong ETag is a
// SHA-256 over the pieces' SHA-256s.
const (
	chunkTarget = 128             // reports per chunk when a chunk splits
	chunkMax    = 2 * chunkTarget // a chunk with more is split in two
	chunkMin    = chunkTarget / 4 // a chunk with fewer joins a neighbour
)

// gzipLevel trades render time for size: on a 100,000-report feed level 2
// is as fast as level 1 and compresses 8.5:1, where the default level 6
// takes twice as long for 9.3:1.
const gzipLevel = 2

// FeedSnapshot is one rendering of the feed. It is immutable, and shares
// the pieces that did not change with the snapshots before it.
type FeedSnapshot struct {
	// ETag is a strong entity tag of the body (quoted); the gzip
	// representation's tag is ETag with a "-gzip" suffix inside the quotes.
	ETag       string
	Reports    int
	RenderedAt time.Time // when the content last changed

	parts        []snapPart // the body's pieces, in order
	gz           [][]byte   // the gzip member's pieces, in order
	size, gzSize int64
}

// snapPart is a piece of a snapshot's body: its text (the head and the
// tail only), or its deflate data and size (a chunk of reports).
type snapPart struct {
	plain, gz []byte
	size      int
}

// GzipETag is the entity tag of the gzip-compressed representation.
func (s *FeedSnapshot) GzipETag() string {
	return strings.TrimSuffix(s.ETag, `"`) + `-gzip"`
}

// Size is the length of the body (the feed JSON).
func (s *FeedSnapshot) Size() int64 { return s.size }

// GzipSize is the length of the gzip-compressed body.
func (s *FeedSnapshot) GzipSize() int64 { return s.gzSize }

// WriteTo writes the body to w. Only the compressed chunks are kept, so
// it decompresses them one by one into w.
func (s *FeedSnapshot) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, p := range s.parts {
		text, bp := p.plain, (*[]byte)(nil)
		if text == nil && p.size > 0 {
			bp = getBuf(p.size)
			text = (*bp)[:p.size]
			inflate(p.gz, text)
		}
		m, err := w.Write(text)
		n += int64(m)
		if bp != nil {
			putBuf(bp)
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// WriteGzipTo writes the gzip-compressed body to w.
func (s *FeedSnapshot) WriteGzipTo(w io.Writer) (int64, error) {
	var n int64
	for _, p := range s.gz {
		m, err := w.Write(p)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Body returns the body in one slice: a copy of the whole feed, for tests
// and tools; the server writes the pieces (WriteTo).
func (s *FeedSnapshot) Body() []byte {
	var b bytes.Buffer
	b.Grow(int(s.size))
	_, _ = s.WriteTo(&b) // writing to a bytes.Buffer cannot fail
	return b.Bytes()
}

// Gzip returns the gzip-compressed body in one slice (a copy).
func (s *FeedSnapshot) Gzip() []byte { return slices.Concat(s.gz...) }

// piece is a rendered part of the body. Its deflate data is immutable
// once published: a change renders a new piece.
type piece struct {
	plain []byte // the text: kept for the head and the tail only
	gz    []byte // the deflate data, ended by a sync flush (or final)
	size  int    // len of the text
	crc   uint32 // CRC-32 (IEEE) of the text
	shift uint32 // x^(8·size) mod the CRC polynomial (crc32Combine)
	sum   [sha256.Size]byte
}

// span is where a report's JSON lies in its chunk's text.
type span struct{ off, n uint32 }

// feedChunk is a run of reports, sorted by id, and its rendering. Only
// the compressed rendering is kept: while a change is made to the chunk
// its text is decompressed (load) and its reports' JSON held in enc,
// until it is rendered again.
type feedChunk struct {
	ids   []string
	spans []span   // each report's JSON in the rendered text; valid unless dirty
	enc   [][]byte // each report's JSON while loaded, else nil
	piece          // valid unless dirty
	first bool     // rendered as the feed's first chunk
	dirty bool
}

// FeedCache holds the rendered feed. Render and Update change it and swap
// a new snapshot in atomically; readers (Current) never wait for a render.
type FeedCache struct {
	mu      sync.Mutex // serialises changes; guards what follows
	head    []byte     // the head's text, nil before the first render
	headPc  piece
	chunks  []*feedChunk
	loaded  []*feedChunk // the chunks loaded by the change under way
	reports int

	cur atomic.Pointer[FeedSnapshot]
	now func() time.Time
}

// NewFeedCache returns an empty cache: Current is nil until the first
// successful Render or Update.
func NewFeedCache() *FeedCache {
	return &FeedCache{now: time.Now}
}

// Current returns the current snapshot, or nil before the first render.
func (c *FeedCache) Current() *FeedSnapshot { return c.cur.Load() }

// Render makes reports, with info, the whole feed: it validates the feed
// (ValidateFeed), re-renders the reports that differ from the current
// ones and the chunks that hold them, and makes the result current. The
// reports appear sorted by id. An invalid feed is refused with the
// problems joined in the error, and the previous snapshot stays current.
// When nothing changed the current snapshot, and its RenderedAt, are kept.
// Changes are serialised; readers are never blocked.
//
// The body has one report per line, which keeps it valid JSON and makes
// golden files diffable.
func (c *FeedCache) Render(info FeedInfo, reports []Report) error {
	_, err := c.render(info, reports)
	return err
}

// feedChanges counts what a render or an update changed.
type feedChanges struct{ changed, withdrawn int }

func (fc feedChanges) any() bool { return fc.changed+fc.withdrawn > 0 }

func (c *FeedCache) render(info FeedInfo, reports []Report) (feedChanges, error) {
	var (
		wg   sync.WaitGroup
		errs []error
	)
	wg.Go(func() { errs = ValidateFeed(Feed{FeedInfo: info, Reports: reports}) })
	sorted := make([]*Report, len(reports))
	for i := range reports {
		sorted[i] = &reports[i]
	}
	slices.SortStableFunc(sorted, func(a, b *Report) int { return strings.Compare(a.ID, b.ID) })
	wg.Wait()
	if len(errs) > 0 {
		return feedChanges{}, fmt.Errorf("carbonblack: render feed: %w", errors.Join(errs...))
	}
	return c.rerender(info, false, func(emit func(*Report)) error {
		for _, r := range sorted {
			emit(r)
		}
		return nil
	})
}

// rerender makes the reports walk emits the whole feed, like Render, but
// without holding them all: walk emits them one at a time, best in
// order of id (as the store's key order gives them), and each chunk of
// the cache is compared, in parallel, with the new reports of its range
// as soon as the walk has passed it. Only a few chunks' worth of reports
// and the changes (the reports that differ from the cached ones, the ids
// withdrawn) are held; an empty cache is built chunk by chunk. Reports
// emitted out of order are held aside and applied at the end, a later
// one with an id replacing an earlier one. When check, each report is
// validated as it comes (ids are unique by construction: a repeated id is
// a later version). A walk that fails, or a report that is invalid,
// changes nothing.
func (c *FeedCache) rerender(info FeedInfo, check bool, walk func(emit func(*Report)) error) (feedChanges, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rr := &rerendering{c: c, check: check, chunks: c.chunks, strays: map[string]*Report{}}
	rr.start()
	err := walk(rr.add)
	rr.finish(err == nil)
	if err != nil {
		return feedChanges{}, err
	}
	if len(rr.v.errs) > 0 {
		return feedChanges{}, fmt.Errorf("carbonblack: render feed: %w", errors.Join(rr.v.errs...))
	}
	if err := errors.Join(rr.errs...); err != nil {
		return feedChanges{}, err
	}
	changes, err := rr.changes()
	if err != nil {
		return feedChanges{}, err
	}
	building, hadHead := len(c.chunks) == 0, c.head
	fc, err := c.apply(info, changes, rr.built)
	if err == nil && building {
		// Every report of a feed built anew is new (apply would count a
		// report emitted twice twice).
		fc.changed = c.reports
		if head, _ := encodeHead(info); hadHead != nil && !bytes.Equal(head, hadHead) {
			fc.changed++
		}
	}
	return fc, err
}

// rerendering is one rerender under way.
type rerendering struct {
	c      *FeedCache
	check  bool
	v      feedValidator
	chunks []*feedChunk // the cache's chunks, compared with the new reports; none: build
	ci     int          // the chunk (or, building, the new chunk) batch belongs to
	batch  []*Report
	n      int    // reports emitted
	last   string // the id of the last report emitted in order
	strays map[string]*Report

	jobs  chan func()
	wg    sync.WaitGroup
	mu    sync.Mutex // guards what follows, written by the workers
	per   [][]reportChange
	built []*feedChunk
	errs  []error
}

// start starts the workers; the walk waits when they are all busy and as
// many chunks are waiting, which bounds what is held.
func (rr *rerendering) start() {
	n := runtime.GOMAXPROCS(0)
	rr.jobs = make(chan func(), n)
	rr.per = make([][]reportChange, len(rr.chunks))
	for range n {
		rr.wg.Go(func() {
			for job := range rr.jobs {
				job()
			}
		})
	}
}

// add takes the next report of the walk.
func (rr *rerendering) add(r *Report) {
	i := rr.n
	rr.n++
	if rr.check && !rr.v.full() {
		rr.v.report(i, r)
	}
	if len(rr.v.errs) > 0 {
		return // refused anyway: only look for more problems
	}
	if i > 0 && r.ID <= rr.last {
		rr.strays[r.ID] = r
		return
	}
	rr.last = r.ID
	if len(rr.chunks) == 0 {
		if rr.batch = append(rr.batch, r); len(rr.batch) == chunkTarget {
			rr.flush()
		}
		return
	}
	// Chunk ci holds the ids from its first to the next chunk's first
	// (the first chunk also those before, the last those after).
	for rr.ci+1 < len(rr.chunks) && r.ID >= rr.chunks[rr.ci+1].ids[0] {
		rr.flush()
	}
	rr.batch = append(rr.batch, r)
}

// flush hands the batch to a worker: compared with chunk ci, or built
// into new chunk ci; the next batch belongs to ci+1.
func (rr *rerendering) flush() {
	ci, rs := rr.ci, rr.batch
	rr.ci, rr.batch = rr.ci+1, nil
	if len(rr.chunks) == 0 {
		rr.jobs <- func() {
			ch, err := buildChunk(rs, ci == 0)
			rr.mu.Lock()
			defer rr.mu.Unlock()
			if err != nil {
				rr.errs = append(rr.errs, err)
				return
			}
			for len(rr.built) <= ci {
				rr.built = append(rr.built, nil)
			}
			rr.built[ci] = ch
		}
		return
	}
	ch := rr.chunks[ci]
	rr.jobs <- func() {
		out, err := diffChunk(ch, rs)
		rr.mu.Lock()
		defer rr.mu.Unlock()
		if err != nil {
			rr.errs = append(rr.errs, err)
			return
		}
		rr.per[ci] = out
	}
}

// finish flushes what is left, unless the walk failed (every chunk not
// reached is compared with no report: all of its reports are withdrawn),
// and waits for the workers.
func (rr *rerendering) finish(walked bool) {
	if walked && len(rr.v.errs) == 0 {
		switch {
		case len(rr.chunks) == 0 && len(rr.batch) > 0:
			rr.flush()
		case len(rr.chunks) > 0:
			for rr.ci < len(rr.chunks) {
				rr.flush()
			}
		}
	}
	close(rr.jobs)
	rr.wg.Wait()
}

// changes are the changes found, with the reports emitted out of order:
// each replaces whatever the ordered walk said of its id.
func (rr *rerendering) changes() ([]reportChange, error) {
	out := slices.Concat(rr.per...)
	if len(rr.strays) == 0 {
		return out, nil
	}
	out = slices.DeleteFunc(out, func(rc reportChange) bool { return rr.strays[rc.id] != nil })
	ids := slices.Sorted(maps.Keys(rr.strays))
	rs := make([]*Report, len(ids))
	for i, id := range ids {
		rs[i] = rr.strays[id]
	}
	encs, err := encodeReports(rs)
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		out = append(out, reportChange{id: id, enc: encs[i]})
	}
	slices.SortFunc(out, func(a, b reportChange) int { return strings.Compare(a.id, b.id) })
	return out, nil
}

// encodeRun encodes reports into text, each preceded by its separator in
// the document when sep ("\n" before the feed's first report when first,
// ",\n" before every other), and returns where each one's JSON lies.
func encodeRun(text *bytes.Buffer, rs []*Report, sep, first bool) ([]span, error) {
	spans := make([]span, len(rs))
	enc := json.NewEncoder(text)
	for k, r := range rs {
		if sep {
			if k > 0 || !first {
				text.WriteByte(',')
			}
			text.WriteByte('\n')
		}
		off := text.Len()
		if err := enc.Encode(r); err != nil {
			return nil, fmt.Errorf("carbonblack: render feed: report %s: %w", r.ID, err)
		}
		text.Truncate(text.Len() - 1) // Encode's newline
		spans[k] = span{off: uint32(off), n: uint32(text.Len() - off)}
	}
	return spans, nil
}

// buildChunk renders reports (sorted by id) into a new chunk, encoded
// straight into a reused buffer and compressed: only the compressed
// chunk is held.
func buildChunk(rs []*Report, first bool) (*feedChunk, error) {
	bp := getBuf(len(rs) * 1024)
	defer putBuf(bp)
	text := bytes.NewBuffer((*bp)[:0])
	spans, err := encodeRun(text, rs, true, first)
	*bp = text.Bytes()
	if err != nil {
		return nil, err
	}
	ch := &feedChunk{ids: make([]string, len(rs)), spans: spans, first: first}
	for k, r := range rs {
		ch.ids[k] = r.ID
	}
	ch.piece = renderPiece(text.Bytes(), false, false)
	return ch, nil
}

// diffChunk compares a chunk with the new reports of its range (sorted by
// id) and returns the changes: the reports added or changed, and the ones
// withdrawn. The chunk's text is decompressed and the new reports encoded
// into buffers of its own, so that the feed's whole text is never held at
// once; only the changes' JSON is kept. It only reads the chunk.
func diffChunk(ch *feedChunk, rs []*Report) ([]reportChange, error) {
	bp, np := getBuf(ch.size), getBuf(ch.size+ch.size/8)
	defer putBuf(bp)
	defer putBuf(np)
	text := (*bp)[:ch.size]
	inflate(ch.gz, text)
	nbuf := bytes.NewBuffer((*np)[:0])
	spans, err := encodeRun(nbuf, rs, false, false)
	*np = nbuf.Bytes()
	if err != nil {
		return nil, err
	}
	enc := func(i int) []byte {
		sp := spans[i]
		return bytes.Clone(nbuf.Bytes()[sp.off : sp.off+sp.n])
	}
	var out []reportChange
	i := 0
	for k, id := range ch.ids {
		for i < len(rs) && rs[i].ID < id {
			out = append(out, reportChange{id: rs[i].ID, enc: enc(i)})
			i++
		}
		if i < len(rs) && rs[i].ID == id {
			old, sp := ch.spans[k], spans[i]
			if !bytes.Equal(nbuf.Bytes()[sp.off:sp.off+sp.n], text[old.off:old.off+old.n]) {
				out = append(out, reportChange{id: id, enc: enc(i)})
			}
			i++
			continue
		}
		out = append(out, reportChange{id: id}) // withdrawn
	}
	for ; i < len(rs); i++ {
		out = append(out, reportChange{id: rs[i].ID, enc: enc(i)})
	}
	return out, nil
}

// Update applies changes to the feed: for each report id, its new report,
// or nil to withdraw it. Only the reports given are validated and
// encoded, and only the chunks that hold them re-rendered. An invalid
// report is refused with the problems joined in the error (FeedError's
// Report is then the report's index among the changes, by id), and
// nothing changes. When nothing changed the current snapshot is kept.
func (c *FeedCache) Update(info FeedInfo, changes map[string]*Report) error {
	_, err := c.update(info, changes)
	return err
}

func (c *FeedCache) update(info FeedInfo, changes map[string]*Report) (feedChanges, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(changes))
	for id := range changes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var (
		v   feedValidator
		ups []*Report
	)
	out := make([]reportChange, len(ids))
	for i, id := range ids {
		out[i].id = id
		r := changes[id]
		if r == nil {
			continue
		}
		if r.ID != id {
			v.rep(i, r, "id", fmt.Sprintf("given as the report of %q", id))
		}
		v.report(i, r)
		ups = append(ups, r)
	}
	if len(v.errs) > 0 {
		return feedChanges{}, fmt.Errorf("carbonblack: update feed: %w", errors.Join(v.errs...))
	}
	encs, err := encodeReports(ups)
	if err != nil {
		return feedChanges{}, err
	}
	for i := range out {
		if changes[out[i].id] != nil {
			out[i].enc, encs = encs[0], encs[1:]
		}
	}
	return c.apply(info, out, nil)
}

// reportChange is a report's new JSON, or nil to withdraw it.
type reportChange struct {
	id  string
	enc []byte
}

// encodeReports encodes the reports, in parallel batches when they are
// many; each batch encodes into one buffer, which the results share.
func encodeReports(rs []*Report) ([][]byte, error) {
	const batch = 256
	out := make([][]byte, len(rs))
	errs := make([]error, (len(rs)+batch-1)/batch)
	parallel(len(errs), 1, func(b int) {
		lo, hi := b*batch, min((b+1)*batch, len(rs))
		var buf bytes.Buffer
		buf.Grow((hi - lo) * 1024)
		enc := json.NewEncoder(&buf)
		ends := make([]int, hi-lo)
		for i := lo; i < hi; i++ {
			if err := enc.Encode(rs[i]); err != nil {
				errs[b] = fmt.Errorf("carbonblack: render feed: report %s: %w", rs[i].ID, err)
				return
			}
			buf.Truncate(buf.Len() - 1) // Encode's newline
			ends[i-lo] = buf.Len()
		}
		all, start := buf.Bytes(), 0
		for i, end := range ends {
			out[lo+i], start = all[start:end:end], end
		}
	})
	return out, errors.Join(errs...)
}

// parallel runs fn(0..n-1) on up to GOMAXPROCS goroutines, in batches of
// batch; on the calling goroutine alone when n is at most batch.
func parallel(n, batch int, fn func(i int)) {
	if n <= batch {
		for i := range n {
			fn(i)
		}
		return
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range min(runtime.GOMAXPROCS(0), (n+batch-1)/batch) {
		wg.Go(func() {
			for {
				lo := int(next.Add(int64(batch))) - batch
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+batch, n); i++ {
					fn(i)
				}
			}
		})
	}
	wg.Wait()
}

// apply makes valid, encoded changes (sorted by id), or installs the
// chunks built for an empty cache, and, when anything changed or nothing
// was rendered yet, swaps in a new snapshot.
func (c *FeedCache) apply(info FeedInfo, changes []reportChange, built []*feedChunk) (feedChanges, error) {
	head, err := encodeHead(info)
	if err != nil {
		return feedChanges{}, err
	}
	var fc feedChanges
	headChanged := !bytes.Equal(head, c.head)
	if headChanged {
		// A new feedinfo: check it as a whole feed's would be.
		var v feedValidator
		v.feedInfo(info)
		if len(v.errs) > 0 {
			return feedChanges{}, fmt.Errorf("carbonblack: render feed: %w", errors.Join(v.errs...))
		}
		if c.head != nil {
			fc.changed++
		}
	}
	defer c.unload()
	if len(c.chunks) == 0 && built != nil {
		c.chunks = built
		for _, ch := range built {
			c.reports += len(ch.ids)
			fc.changed += len(ch.ids)
		}
	}
	if len(c.chunks) == 0 {
		changes = c.fill(changes, &fc)
	}
	for _, ch := range changes {
		switch c.change(ch) {
		case +1:
			fc.changed++
		case -1:
			fc.withdrawn++
		}
	}
	if !fc.any() && c.cur.Load() != nil {
		return fc, nil
	}
	c.rebalance()
	if headChanged {
		c.head, c.headPc = head, renderPiece(head, false, true)
	}
	var dirty []*feedChunk
	for i, ch := range c.chunks {
		if ch.first != (i == 0) {
			ch.first, ch.dirty = i == 0, true
		}
		if ch.dirty {
			dirty = append(dirty, ch)
		}
	}
	parallel(len(dirty), 1, func(i int) { dirty[i].render() })
	c.publish()
	return fc, nil
}

// fill fills an empty cache with the reports changes bring, in chunks of
// chunkTarget (much faster than adding them one by one); the changes that
// withdraw reports are left.
func (c *FeedCache) fill(changes []reportChange, fc *feedChanges) []reportChange {
	var ch *feedChunk
	left := changes[:0:0]
	for _, rc := range changes {
		if rc.enc == nil {
			left = append(left, rc)
			continue
		}
		if ch == nil || len(ch.ids) == chunkTarget {
			ch = &feedChunk{ids: make([]string, 0, chunkTarget), enc: make([][]byte, 0, chunkTarget), dirty: true}
			c.chunks = append(c.chunks, ch)
		}
		ch.ids, ch.enc = append(ch.ids, rc.id), append(ch.enc, rc.enc)
		c.reports++
		fc.changed++
	}
	return left
}

// touch loads a chunk about to be changed (or compared), and notes it, so
// that unload lets go of its text if it is not rendered again.
func (c *FeedCache) touch(ch *feedChunk) {
	if ch.enc == nil {
		ch.load()
		c.loaded = append(c.loaded, ch)
	}
}

// unload lets go of the text of the chunks loaded by a change: the ones
// rendered since have already.
func (c *FeedCache) unload() {
	for _, ch := range c.loaded {
		ch.enc = nil
	}
	clear(c.loaded)
	c.loaded = c.loaded[:0]
}

// change applies one change to the chunks: +1 when a report was added or
// changed, -1 when one was withdrawn, 0 when nothing changed.
func (c *FeedCache) change(rc reportChange) int {
	// The chunk that holds id, or would: the last whose first id is not
	// after it (the first chunk for an id before every other).
	ci, _ := slices.BinarySearchFunc(c.chunks, rc.id, func(ch *feedChunk, id string) int {
		if ch.ids[0] <= id {
			return -1
		}
		return +1
	})
	ci = max(ci-1, 0)
	if len(c.chunks) == 0 {
		if rc.enc == nil {
			return 0
		}
		c.chunks = []*feedChunk{{enc: [][]byte{}}}
	}
	ch := c.chunks[ci]
	j, found := slices.BinarySearch(ch.ids, rc.id)
	if rc.enc == nil && !found {
		return 0
	}
	c.touch(ch)
	switch {
	case rc.enc == nil:
		ch.ids, ch.enc = slices.Delete(ch.ids, j, j+1), slices.Delete(ch.enc, j, j+1)
		ch.dirty = true
		c.reports--
		if len(ch.ids) == 0 {
			c.chunks = slices.Delete(c.chunks, ci, ci+1)
		}
		return -1
	case found && bytes.Equal(ch.enc[j], rc.enc):
		return 0
	case found:
		ch.enc[j] = rc.enc
	default:
		ch.ids, ch.enc = slices.Insert(ch.ids, j, rc.id), slices.Insert(ch.enc, j, rc.enc)
		c.reports++
		if len(ch.ids) > chunkMax {
			c.chunks = slices.Insert(c.chunks, ci+1, ch.split())
		}
	}
	ch.dirty = true
	return +1
}

// split moves the upper half of a loaded chunk's reports into a new chunk.
func (ch *feedChunk) split() *feedChunk {
	h := len(ch.ids) / 2
	n := &feedChunk{ids: slices.Clone(ch.ids[h:]), enc: slices.Clone(ch.enc[h:]), dirty: true}
	clear(ch.enc[h:]) // let the moved reports' JSON go with the new chunk
	ch.ids, ch.enc = slices.Clip(ch.ids[:h]), slices.Clip(ch.enc[:h])
	ch.dirty = true
	return n
}

// rebalance joins the chunks that changed and became small to a
// neighbour, so that withdrawals do not leave many tiny chunks.
func (c *FeedCache) rebalance() {
	for i := 0; i < len(c.chunks) && len(c.chunks) > 1; i++ {
		ch := c.chunks[i]
		if !ch.dirty || len(ch.ids) >= chunkMin {
			continue
		}
		j := i + 1 // join the smaller neighbour
		if i == len(c.chunks)-1 || i > 0 && len(c.chunks[i-1].ids) < len(c.chunks[i+1].ids) {
			j = i - 1
		}
		a, b := c.chunks[min(i, j)], c.chunks[max(i, j)]
		c.touch(a)
		c.touch(b)
		a.ids, a.enc, a.dirty = append(a.ids, b.ids...), append(a.enc, b.enc...), true
		c.chunks = slices.Delete(c.chunks, max(i, j), max(i, j)+1)
		if len(a.ids) > chunkMax {
			c.chunks = slices.Insert(c.chunks, min(i, j)+1, a.split())
		}
		i = min(i, j) // look at the joined chunk again
	}
}

// load decompresses a chunk's text and points its reports' JSON into it.
func (ch *feedChunk) load() {
	text := make([]byte, ch.size)
	inflate(ch.gz, text)
	ch.enc = make([][]byte, len(ch.ids))
	for k, sp := range ch.spans {
		ch.enc[k] = text[sp.off : sp.off+sp.n : sp.off+sp.n]
	}
}

// render renders a chunk's reports (loading them first when the chunk
// only needs rendering anew, as the feed's first or no longer), keeps
// where each report's JSON lies, and lets go of the text.
func (ch *feedChunk) render() {
	if ch.enc == nil {
		ch.load()
	}
	size := 0
	for _, e := range ch.enc {
		size += len(e) + 2
	}
	bp := getBuf(size)
	text := (*bp)[:0]
	ch.spans = slices.Grow(ch.spans[:0], len(ch.enc))[:len(ch.enc)]
	for k, e := range ch.enc {
		if k > 0 || !ch.first {
			text = append(text, ',')
		}
		text = append(text, '\n')
		ch.spans[k] = span{off: uint32(len(text)), n: uint32(len(e))}
		text = append(text, e...)
	}
	ch.spans = slices.Clip(ch.spans)
	ch.piece, ch.dirty = renderPiece(text, false, false), false
	ch.enc = nil
	*bp = text
	putBuf(bp)
}

// publish swaps in a snapshot of the rendered pieces.
func (c *FeedCache) publish() {
	tail := feedTail(len(c.chunks) > 0)
	n := len(c.chunks) + 2
	pieces := make([]*piece, 0, n)
	pieces = append(pieces, &c.headPc)
	for _, ch := range c.chunks {
		pieces = append(pieces, &ch.piece)
	}
	pieces = append(pieces, tail)

	s := &FeedSnapshot{Reports: c.reports, RenderedAt: c.now().UTC(),
		parts: make([]snapPart, 0, n), gz: make([][]byte, 0, n+2)}
	s.gz = append(s.gz, gzipHeader[:])
	s.gzSize = int64(len(gzipHeader) + 8)
	var crc uint32
	tag := sha256.New()
	for _, p := range pieces {
		s.parts = append(s.parts, snapPart{plain: p.plain, gz: p.gz, size: p.size})
		s.gz = append(s.gz, p.gz)
		s.size += int64(p.size)
		s.gzSize += int64(len(p.gz))
		crc = crc32Combine(crc, p.crc, p.shift)
		tag.Write(p.sum[:])
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc)
	binary.LittleEndian.PutUint32(trailer[4:], uint32(s.size)) // ISIZE: the size modulo 2^32
	s.gz = append(s.gz, trailer[:])
	s.ETag = `"` + hex.EncodeToString(tag.Sum(nil)[:16]) + `"`
	c.cur.Store(s)
}

// gzipHeader is a gzip member header (RFC 1952) with no name and no
// modification time, as compress/gzip writes it: deflate, OS unknown.
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// encodeHead is the text before the first report.
func encodeHead(info FeedInfo) ([]byte, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("carbonblack: render feed: feedinfo: %w", err)
	}
	return slices.Concat([]byte(`{"feedinfo":`), b, []byte(`,"reports":[`)), nil
}

// feedTail is the text after the last report, rendered with the final
// deflate block.
func feedTail(reports bool) *piece {
	if reports {
		return tailReports()
	}
	return tailEmpty()
}

var (
	tailReports = sync.OnceValue(func() *piece { p := renderPiece([]byte("\n]}\n"), true, true); return &p })
	tailEmpty   = sync.OnceValue(func() *piece { p := renderPiece([]byte("]}\n"), true, true); return &p })
)

// deflater is a pooled compressor and the buffer it writes to.
type deflater struct {
	zw  *flate.Writer
	out sliceWriter
}

var deflatePool = sync.Pool{New: func() any {
	d := new(deflater)
	zw, err := flate.NewWriter(&d.out, gzipLevel)
	if err != nil {
		panic(err) // only for an invalid level
	}
	d.zw = zw
	return d
}}

// bufPool holds buffers for a chunk's text while it is rendered, compared
// or served: only the compressed form is kept.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// getBuf returns a buffer of at least n bytes' capacity.
func getBuf(n int) *[]byte {
	bp := bufPool.Get().(*[]byte)
	if cap(*bp) < n {
		*bp = make([]byte, 0, n+n/8)
	}
	return bp
}

func putBuf(bp *[]byte) {
	*bp = (*bp)[:0]
	bufPool.Put(bp)
}

// sliceWriter appends to a byte slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// renderPiece compresses text on its own, ending with a sync flush (or
// with the final block when final), and takes its checksums. The piece
// keeps the text only when keep; its deflate data is trimmed to length.
func renderPiece(text []byte, final, keep bool) piece {
	d := deflatePool.Get().(*deflater)
	d.out.b = slices.Grow(d.out.b[:0], len(text)/4+64)
	d.zw.Reset(&d.out)
	// Writing to a sliceWriter cannot fail.
	_, _ = d.zw.Write(text)
	if final {
		_ = d.zw.Close()
	} else {
		_ = d.zw.Flush()
	}
	gz := make([]byte, len(d.out.b)) // no spare capacity
	copy(gz, d.out.b)
	deflatePool.Put(d)
	p := piece{gz: gz, size: len(text), crc: crc32IEEE(text),
		shift: crc32Shift(int64(len(text))), sum: sha256.Sum256(text)}
	if keep {
		p.plain = text
	}
	return p
}

var inflatePool = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// inflate decompresses a piece's deflate data into text, which is exactly
// as long as the piece's text: the data is not ended by a final block, so
// reading stops at the known size. The data is the cache's own; one that
// does not decompress is a bug.
func inflate(gz, text []byte) {
	zr := inflatePool.Get().(io.ReadCloser)
	if err := zr.(flate.Resetter).Reset(bytes.NewReader(gz), nil); err != nil {
		panic(fmt.Sprintf("carbonblack: feed cache: reset inflater: %v", err))
	}
	if _, err := io.ReadFull(zr, text); err != nil {
		panic(fmt.Sprintf("carbonblack: feed cache: a chunk's deflate data does not decompress: %v", err))
	}
	inflatePool.Put(zr)
}
