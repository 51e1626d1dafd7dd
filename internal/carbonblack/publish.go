package carbonblack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/retry"
	"github.com/vtconnector/vtconnector/internal/store"
)

// resultLister is the part of the store the publisher and the HTML
// index read verdicts from.
type resultLister interface {
	ListResultsChanged(ctx context.Context, ns string, pos store.ResultsAfter, limit int) ([]store.Result, store.ResultsAfter, error)
	ListResultsByKey(ctx context.Context, ns, from string, back bool, limit int) ([]store.Result, error)
	RecentResults(ctx context.Context, ns string, n int) ([]store.Result, error)
}

// resultPager is the part of the store the HTML index pages through.
type resultPager interface {
	ListResultsByKey(ctx context.Context, ns, from string, back bool, limit int) ([]store.Result, error)
	CountResults(ctx context.Context, ns string) (int64, error)
}

// StoreVerdicts lists the verdicts kept in the store (the HTML index's
// VerdictLister), by key.
type StoreVerdicts struct{ St resultPager }

// ListVerdicts implements VerdictLister.
func (sv StoreVerdicts) ListVerdicts(ctx context.Context, from string, back bool, limit int) ([]Verdict, error) {
	rs, err := sv.St.ListResultsByKey(ctx, ResultsNS, from, back, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Verdict, 0, len(rs))
	for _, r := range rs {
		v, err := decodeVerdict(r)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// CountVerdicts implements VerdictLister.
func (sv StoreVerdicts) CountVerdicts(ctx context.Context) (int64, error) {
	return sv.St.CountResults(ctx, ResultsNS)
}

// decodeVerdict reads a verdict stored under ResultsNS.
func decodeVerdict(r store.Result) (Verdict, error) {
	var v Verdict
	if err := json.Unmarshal(r.Value, &v); err != nil {
		return Verdict{}, fmt.Errorf("carbonblack: verdict %s unreadable: %w", r.Key, err)
	}
	v.Key, v.UpdatedAt = r.Key, r.UpdatedAt
	return v, nil
}

// syncer is told when Carbon Black should fetch the feed again.
type syncer interface{ MarkDirty(full bool) }

// Publisher keeps the served feed in step with the stored verdicts: after
// a change it updates the feed once (not per request) and tells the
// registrar to have Carbon Black sync it: incrementally when reports were
// added or changed, fully when one was withdrawn (an incremental sync
// never removes a report).
//
// It reads only the verdicts that changed since its last read (in the
// order they changed, from a keyset position), and hands the feed cache
// only the reports they make or withdraw, which re-renders only the
// chunks that hold them: a change costs in proportion to what changed,
// not to every stored verdict or every report. The read goes back
// changeOverlap before the last change seen, for writers whose
// transactions committed late, and everything is read again every
// fullEvery: in key order, which is the order of the reports' ids, so
// that the cache compares each of its chunks with the new reports of its
// range as the read passes it, never holding the whole feed.
//
// A verdict makes the report Binary_<its MD5>; it is stored under its
// MD5 in upper case. One stored under any other key (a damaged or foreign
// row) is left out with a warning, so that each report comes from one
// verdict and the key order is the report order.
type Publisher struct {
	st       resultLister
	cache    *FeedCache
	info     FeedInfo
	opts     FeedOptions
	sync     syncer
	log      *slog.Logger
	debounce time.Duration

	changed  chan struct{}
	rendered chan struct{} // closed after the first successful render
	once     sync.Once

	mu      sync.Mutex // serialises refreshes; guards what follows
	read    bool       // every verdict has been read once
	pending map[string]*Report
	// seen are the versions of the verdicts read within changeOverlap of
	// the last change seen: a refresh reads that window again, for late
	// commits, but takes only the versions it has not taken yet.
	seen     map[string]seenVersion
	seed     maphash.Seed
	taken    int // verdict versions read by refreshes of changes (for tests)
	pos      store.ResultsAfter
	lastFull time.Time
	now      func() time.Time
}

// seenVersion tells a version of a stored verdict: when it was written
// and a hash of its value.
type seenVersion struct {
	at  int64
	sum uint64
}

const (
	// changeOverlap is how far before the last change seen a refresh
	// reads again.
	changeOverlap = 5 * time.Second
	// fullEvery is how often every verdict is read again.
	fullEvery = 15 * time.Minute
	// refreshPage is how many verdicts are read at a time.
	refreshPage = 1000
)

// NewPublisher returns a publisher rendering into cache.
func NewPublisher(st resultLister, cache *FeedCache, info FeedInfo, opts FeedOptions, sync syncer, log *slog.Logger) *Publisher {
	return &Publisher{st: st, cache: cache, info: info, opts: opts, sync: sync, log: log,
		debounce: 500 * time.Millisecond, changed: make(chan struct{}, 1), rendered: make(chan struct{}), now: time.Now,
		seen: map[string]seenVersion{}, seed: maphash.MakeSeed()}
}

// Rendered is closed once the feed has been rendered: before that the
// feed server answers 503, and registering the feed would fail.
func (p *Publisher) Rendered() <-chan struct{} { return p.rendered }

// Changed notes that a verdict changed; it never blocks.
func (p *Publisher) Changed() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// Refresh reads the verdicts that changed since the last refresh (all of
// them the first time, and every fullEvery), updates the feed with the
// reports that changed, and then signals a sync.
func (p *Publisher) Refresh(ctx context.Context) error {
	_, _, err := p.refresh(ctx)
	return err
}

// refresh is Refresh; it also says whether it read every verdict, and
// how many changed verdicts an incremental refresh handed the feed.
func (p *Publisher) refresh(ctx context.Context) (whole bool, n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	first := !p.read
	var fc feedChanges
	if p.wholeDue() {
		// Render validates, and refuses a feed Carbon Black would
		// reject, keeping the last good one.
		fc, err = p.readAll(ctx)
		whole = true
	} else {
		fc, n, err = p.readChanged(ctx)
	}
	if err != nil {
		return whole, n, fmt.Errorf("carbonblack: refresh feed: %w", err)
	}
	p.once.Do(func() { close(p.rendered) })
	if !fc.any() {
		return whole, n, nil
	}
	p.log.Info("feed updated", "reports", p.cache.Current().Reports, "new_or_changed", fc.changed, "withdrawn", fc.withdrawn,
		"whole", whole, "took", time.Since(start).Round(time.Microsecond))
	if !first { // the registrar syncs fully at start
		p.sync.MarkDirty(fc.withdrawn > 0)
	}
	return whole, n, nil
}

// wholeDue says whether the next refresh reads every verdict: the first
// one, and one every fullEvery.
func (p *Publisher) wholeDue() bool {
	return !p.read || p.now().Sub(p.lastFull) >= fullEvery
}

// readAll reads every verdict, in key order, and makes their reports the
// feed (FeedCache.rerender).
func (p *Publisher) readAll(ctx context.Context) (feedChanges, error) {
	start := p.now()
	// The changes read next start from the last one made before this
	// read (those made during it may be read twice, which is harmless).
	var pos store.ResultsAfter
	last, err := p.st.RecentResults(ctx, ResultsNS, 1)
	if err != nil {
		return feedChanges{}, err
	}
	if len(last) > 0 {
		pos = store.ResultsAfter{At: last[0].UpdatedAt, Key: last[0].Key}
	}
	// The versions the next read of changes will find again in its
	// overlap are taken here.
	clear(p.seen)
	cut := pos.At.Add(-changeOverlap)
	fc, err := p.cache.rerender(p.info, true, func(emit func(*Report)) error {
		return p.walkKeys(ctx, func(r store.Result) {
			if !r.UpdatedAt.Before(cut) {
				p.seen[r.Key] = p.version(r)
			}
		}, func(v Verdict) {
			if rep, ok := p.report(v); ok {
				emit(&rep)
			}
		})
	})
	if err != nil {
		clear(p.seen) // not taken after all
		return feedChanges{}, err
	}
	p.read, p.pending, p.pos, p.lastFull = true, nil, pos, start
	return fc, nil
}

// walkKeys calls saw with every result and fn with every usable verdict,
// in key order, page by page.
func (p *Publisher) walkKeys(ctx context.Context, saw func(r store.Result), fn func(v Verdict)) error {
	from := ""
	for {
		rs, err := p.st.ListResultsByKey(ctx, ResultsNS, from, false, refreshPage)
		if err != nil {
			return err
		}
		for _, r := range rs {
			saw(r)
			if v, ok := p.decode(r); ok {
				fn(v)
			}
		}
		if len(rs) < refreshPage {
			return nil
		}
		from = rs[len(rs)-1].Key
	}
}

// walkChanged calls fn with every result changed from pos on, in the
// order they changed, page by page, and returns the position after the
// last one.
func (p *Publisher) walkChanged(ctx context.Context, pos store.ResultsAfter, fn func(r store.Result)) (store.ResultsAfter, error) {
	for {
		rs, next, err := p.st.ListResultsChanged(ctx, ResultsNS, pos, refreshPage)
		if err != nil {
			return pos, err
		}
		for _, r := range rs {
			fn(r)
		}
		pos = next
		if len(rs) < refreshPage {
			return pos, nil
		}
	}
}

// decode reads a stored verdict; one that is unreadable, or stored under
// another key than its MD5 in upper case, is logged and left out.
func (p *Publisher) decode(r store.Result) (Verdict, bool) {
	v, err := decodeVerdict(r)
	switch {
	case err != nil:
		p.log.Warn("verdict unreadable; left out of the feed", "md5", r.Key, "error", err)
		return Verdict{}, false
	case r.Key != strings.ToUpper(v.MD5) || v.MD5 == "":
		p.log.Warn("verdict stored under another key than its MD5 in upper case; left out of the feed", "key", r.Key, "md5", v.MD5)
		return Verdict{}, false
	}
	return v, true
}

// version tells the version of a stored verdict.
func (p *Publisher) version(r store.Result) seenVersion {
	return seenVersion{at: r.UpdatedAt.UnixNano(), sum: maphash.Bytes(p.seed, r.Value)}
}

// readChanged reads the verdicts that changed since the last read (with
// changeOverlap) and updates the feed with the reports they make or
// withdraw; it says how many verdicts' changes it handed the feed.
// Changes the feed refused stay pending for the next refresh.
func (p *Publisher) readChanged(ctx context.Context) (feedChanges, int, error) {
	if err := p.gather(ctx, changeOverlap); err != nil {
		return feedChanges{}, 0, err
	}
	n := len(p.pending)
	fc, err := p.cache.update(p.info, p.pending)
	if err != nil {
		return feedChanges{}, 0, err
	}
	clear(p.pending)
	return fc, n, nil
}

// waiting reads the verdicts that changed since the last refresh, keeps
// their reports for the next one, and says how many wait; -1 when the
// next refresh reads every verdict anyway.
func (p *Publisher) waiting(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wholeDue() {
		return -1, nil
	}
	// Without the overlap: the refresh reads it.
	if err := p.gather(ctx, 0); err != nil {
		return len(p.pending), fmt.Errorf("carbonblack: read changed verdicts: %w", err)
	}
	return len(p.pending), nil
}

// gather reads the verdicts that changed since the last read (going back
// overlap before it) into pending, each version once.
func (p *Publisher) gather(ctx context.Context, overlap time.Duration) error {
	pos := p.pos
	if overlap > 0 {
		pos = store.ResultsAfter{At: p.pos.At.Add(-overlap)}
	}
	if p.pending == nil {
		p.pending = map[string]*Report{}
	}
	pos, err := p.walkChanged(ctx, pos, func(r store.Result) {
		ver := p.version(r)
		if p.seen[r.Key] == ver {
			return // read by an earlier refresh, in the overlap
		}
		p.seen[r.Key] = ver
		p.taken++
		v, ok := p.decode(r)
		if !ok {
			return
		}
		// A verdict that no longer makes a report withdraws it (the
		// cache ignores the withdrawal of a report it does not hold).
		var rep *Report
		if r, ok := p.report(v); ok {
			rep = &r
		}
		p.pending[reportID(v.MD5)] = rep
	})
	if err != nil {
		return err
	}
	if pos.At.After(p.pos.At) {
		p.pos = pos
	}
	cut := p.pos.At.Add(-changeOverlap).UnixNano()
	maps.DeleteFunc(p.seen, func(_ string, v seenVersion) bool { return v.at < cut })
	return nil
}

// report is the report of one verdict, if it makes one (BuildReports).
func (p *Publisher) report(v Verdict) (Report, bool) {
	rs := BuildReports([]Verdict{v}, p.opts)
	if len(rs) == 0 {
		return Report{}, false
	}
	return rs[0], true
}

// reportID is the id of the report of a file: Binary_<MD5 in upper case>.
func reportID(md5 string) string { return "Binary_" + strings.ToUpper(md5) }

// Run renders the feed at start and after every change until ctx ends.
// A refresh comes no sooner than the debounce after the last one ended,
// so that a burst of verdicts shares a few refreshes: a change after a
// quiet spell is rendered at once, one during a burst waits at most the
// debounce. In a busy connector a refresh comes later still, so that
// keeping the feed up to date takes at most about a third of a core: no
// sooner than twice the last incremental refresh's duration after it
// ended, scaled by the load (changeLoad): the rate of the changes waiting
// now against the rate of those the last refresh handled. The first
// change after a backlog drained is thus not held for twice the
// backlog's last, large refresh. A refresh that read every verdict (at
// start, every fullEvery) does not count.
func (p *Publisher) Run(ctx context.Context) error {
	var last time.Time // when the refresh before started
	for {
		start := time.Now()
		whole, n, err := p.refresh(ctx)
		if err != nil && ctx.Err() == nil {
			p.log.Error("feed not refreshed", "error", err)
		}
		end := time.Now()
		took := end.Sub(start)
		var cycle time.Duration // since the refresh before started
		if !last.IsZero() {
			cycle = start.Sub(last)
		}
		last = start
		if whole {
			// Reading every verdict is rare (at start and every
			// fullEvery): it does not slow down the changes after it.
			took = 0
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.changed:
		}
		if retry.Sleep(ctx, time.Until(end.Add(p.debounce))) != nil {
			return nil
		}
		if took == 0 {
			continue
		}
		load := 1.0
		if k, err := p.waiting(ctx); err == nil {
			load = changeLoad(n, cycle, k, time.Since(start))
		}
		if retry.Sleep(ctx, refreshWait(time.Now(), end, took, load, p.debounce)) != nil {
			return nil
		}
	}
}

// refreshWait is how long Run waits, at now, before the next refresh, the
// last having taken took and ended at end, under load: until the
// debounce, and twice took scaled by load, have passed since end.
func refreshWait(now, end time.Time, took time.Duration, load float64, debounce time.Duration) time.Duration {
	return max(0, end.Add(max(debounce, time.Duration(2*float64(took)*load))).Sub(now))
}

// changeLoad compares the rate of the k changes waiting, read since
// after the last refresh started, with that of the n changes it handled,
// read over the cycle before it: 1 at the same rate or more (or when
// unknown), less as the changes slow down. k is -1 when the next refresh
// reads every verdict.
func changeLoad(n int, cycle time.Duration, k int, since time.Duration) float64 {
	if n <= 0 || cycle <= 0 || k < 0 || since <= 0 {
		return 1
	}
	return min(1, float64(k)/since.Seconds()/(float64(n)/cycle.Seconds()))
}

// feedAPI is the part of the Cb client the registrar uses.
type feedAPI interface {
	ListFeeds(ctx context.Context) ([]FeedRecord, error)
	CreateFeed(ctx context.Context, f FeedRecord) (FeedRecord, error)
	UpdateFeed(ctx context.Context, f FeedRecord) error
	SyncFeed(ctx context.Context, id int, full bool) error
}

// RegistrarConfig is the feed as it should be registered on the server.
type RegistrarConfig struct {
	Name               string
	FeedURL            string
	UseProxy           bool
	ValidateServerCert bool
	Username, Password string
	// Register false leaves the feed's registration to the operator; the
	// connector still asks an existing feed of that name to sync.
	Register bool
	// Manage says which settings of an existing feed the configuration
	// sets explicitly: only those are changed on the server. A new feed
	// is created with all of them.
	Manage FeedSettings
	// FullSyncAtStart asks for a full sync once the feed is registered,
	// to catch up with reports withdrawn while the connector was down.
	// It must be false while the connector has published nothing yet: a
	// full sync of an empty feed makes Carbon Black drop every tag the
	// previous connector left, and every binary would be analysed again.
	FullSyncAtStart bool
	SyncEvery       time.Duration // at most one sync per interval (default 1 min)
	RetryEvery      time.Duration // after a failure to reach the server (default 30 s)
	// OnDisabled, when set, is told whether an administrator has
	// disabled the feed (true) or it is enabled (again) (false).
	OnDisabled func(disabled bool)
}

// FeedSettings names the settings of a registered feed the connector
// may change.
type FeedSettings struct {
	URL                bool // feed_url (feed_host, listener_port, cert_file, key_file)
	UseProxy           bool // feed_use_proxy
	ValidateServerCert bool // feed_validate_server_cert
	Auth               bool // feed_username, feed_password
}

// Registrar makes sure the feed is registered on the Carbon Black server
// and asks the server to sync it after changes, at most once per
// SyncEvery. A feed that exists is respected: only the settings the
// configuration sets explicitly are changed (the record read whole and
// written back whole), and a feed an administrator disabled stays
// disabled and is not synced. A failed sync is kept for the next round,
// never forgotten.
type Registrar struct {
	cb  feedAPI
	cfg RegistrarConfig
	log *slog.Logger

	mu    sync.Mutex
	dirty bool
	full  bool
	// marks counts MarkDirty calls, fullMark is the count at the last
	// one asking for a full sync: a sync clears only the marks made
	// before it was requested.
	marks, fullMark int
	id              int
	syncs           int
	disabled        bool
}

// NewRegistrar returns a registrar.
func NewRegistrar(cb feedAPI, cfg RegistrarConfig, log *slog.Logger) *Registrar {
	if cfg.SyncEvery <= 0 {
		cfg.SyncEvery = time.Minute
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = 30 * time.Second
	}
	if cfg.Name == "" {
		cfg.Name = FeedName
	}
	return &Registrar{cb: cb, cfg: cfg, log: log}
}

// MarkDirty asks for a sync at the next round; full for a full sync.
func (r *Registrar) MarkDirty(full bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marks++
	r.dirty = true
	if full {
		r.full, r.fullMark = true, r.marks
	}
}

// FeedID is the feed's id on the server, 0 until known.
func (r *Registrar) FeedID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

// Disabled reports whether the feed is disabled on the server.
func (r *Registrar) Disabled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.disabled
}

// Run waits until ready is closed (the feed server listens: the Cb server
// fetches the feed while registering it), registers the feed or finds it,
// then syncs after changes until ctx ends.
func (r *Registrar) Run(ctx context.Context, ready <-chan struct{}) error {
	select {
	case <-ctx.Done():
		return nil
	case <-ready:
	}
	for {
		err := r.Ensure(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrCbAuth) {
			r.log.Error("CARBON BLACK REFUSED THE API TOKEN: check carbonblack_server_token", "error", err)
		} else {
			r.log.Error("feed registration failed; retrying", "error", err, "retry_in", r.cfg.RetryEvery)
		}
		if retry.Sleep(ctx, r.cfg.RetryEvery) != nil {
			return nil
		}
	}
	r.MarkDirty(r.cfg.FullSyncAtStart) // catch up with whatever changed while we were down
	t := time.NewTicker(r.cfg.SyncEvery)
	defer t.Stop()
	for {
		r.syncNow(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Ensure finds the feed by name (case-insensitively, like cbapi) and
// creates it when absent. When it exists, only the settings named by
// Manage are changed, by writing the whole record back; a disabled feed
// is never enabled.
func (r *Registrar) Ensure(ctx context.Context) error {
	feeds, err := r.cb.ListFeeds(ctx)
	if err != nil {
		return err
	}
	var found []FeedRecord
	for _, f := range feeds {
		if strings.EqualFold(f.Name, r.cfg.Name) {
			found = append(found, f)
		}
	}
	if len(found) > 1 {
		r.log.Warn("several feeds carry this name; using the first", "name", r.cfg.Name, "ids", fmt.Sprint(feedIDs(found)))
	}
	switch {
	case len(found) == 0 && !r.cfg.Register:
		r.log.Warn("feed not registered on the Carbon Black server and register_feed is off; add it there with this URL", "feed_url", r.cfg.FeedURL)
		return nil
	case len(found) == 0:
		want := FeedRecord{FeedURL: r.cfg.FeedURL, Enabled: true, UseProxy: r.cfg.UseProxy,
			ValidateServerCert: r.cfg.ValidateServerCert, Username: r.cfg.Username, Password: r.cfg.Password}
		f, err := r.cb.CreateFeed(ctx, want)
		if err != nil {
			return fmt.Errorf("create feed (the Carbon Black server must be able to fetch %s): %w", r.cfg.FeedURL, err)
		}
		r.setID(f.ID)
		r.setDisabled(false)
		r.log.Info("feed registered on the Carbon Black server", "id", f.ID, "feed_url", r.cfg.FeedURL)
		return nil
	}
	cur := found[0]
	r.setID(cur.ID)
	r.setDisabled(!cur.Enabled)
	if !r.cfg.Register {
		return nil
	}
	want, changed := cur, []string{}
	m := r.cfg.Manage
	if m.URL && cur.FeedURL != r.cfg.FeedURL {
		want.FeedURL, changed = r.cfg.FeedURL, append(changed, "feed_url")
	}
	if m.UseProxy && cur.UseProxy != r.cfg.UseProxy {
		want.UseProxy, changed = r.cfg.UseProxy, append(changed, "use_proxy")
	}
	if m.ValidateServerCert && cur.ValidateServerCert != r.cfg.ValidateServerCert {
		want.ValidateServerCert, changed = r.cfg.ValidateServerCert, append(changed, "validate_server_cert")
	}
	if m.Auth && (cur.Username != r.cfg.Username || r.cfg.Password != "" && cur.Password != r.cfg.Password) {
		want.Username, want.Password, changed = r.cfg.Username, r.cfg.Password, append(changed, "username", "password")
	}
	if len(changed) == 0 {
		return nil
	}
	if err := r.cb.UpdateFeed(ctx, want); err != nil {
		var ce *CbError
		if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 && ce.Status != 401 && ce.Status != 403 {
			// The server refuses the change (an older server, a record it
			// will not take back): the feed works as the console has it.
			r.log.Error("the Carbon Black server refused to update the feed's settings; change them on its Threat Intelligence page",
				"id", cur.ID, "settings", strings.Join(changed, ","), "error", err)
			return nil
		}
		return fmt.Errorf("update feed %d: %w", cur.ID, err)
	}
	r.log.Info("feed settings updated on the Carbon Black server (only those connector.conf sets)", "id", cur.ID,
		"settings", strings.Join(changed, ","), "feed_url", want.FeedURL)
	return nil
}

// setDisabled records whether the feed is disabled, and says so loudly
// when that changes.
func (r *Registrar) setDisabled(d bool) {
	r.mu.Lock()
	was := r.disabled
	r.disabled = d
	id := r.id
	r.mu.Unlock()
	switch {
	case d && !was:
		r.log.Error("THE FEED IS DISABLED ON THE CARBON BLACK SERVER: vtconnector leaves it disabled and asks for no sync; its verdicts reach Carbon Black only once an administrator enables it on the Threat Intelligence page", "id", id)
	case !d && was:
		r.log.Info("the feed is enabled again on the Carbon Black server; syncs resume", "id", id)
	}
	if r.cfg.OnDisabled != nil && d != was {
		r.cfg.OnDisabled(d)
	}
}

func feedIDs(fs []FeedRecord) []int {
	ids := make([]int, len(fs))
	for i, f := range fs {
		ids[i] = f.ID
	}
	return ids
}

func (r *Registrar) setID(id int) {
	r.mu.Lock()
	r.id = id
	r.mu.Unlock()
}

func (r *Registrar) syncNow(ctx context.Context) {
	r.mu.Lock()
	dirty, full, id, disabled, marks := r.dirty, r.full, r.id, r.disabled, r.marks
	r.mu.Unlock()
	if disabled {
		// Only an administrator enables it again: look whether one did.
		if err := r.Ensure(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("feed state not read", "error", err)
		}
		if r.Disabled() {
			return
		}
		r.MarkDirty(r.cfg.FullSyncAtStart) // whatever changed while it was off
		r.mu.Lock()
		dirty, full, id, marks = r.dirty, r.full, r.id, r.marks
		r.mu.Unlock()
	}
	if !dirty || id == 0 {
		return
	}
	err := r.cb.SyncFeed(ctx, id, full)
	var ce *CbError
	switch {
	case err == nil:
		r.mu.Lock()
		// A MarkDirty during the call stays for the next round: the
		// server may have fetched the feed before that change.
		r.dirty = r.marks != marks
		r.full = r.full && r.fullMark > marks
		r.syncs++
		r.mu.Unlock()
		r.log.Info("feed sync requested", "id", id, "full", full)
	case errors.As(err, &ce) && ce.Status == 409:
		r.setDisabled(true)
	case errors.Is(err, ErrCbNotFound):
		r.log.Warn("the feed disappeared from the Carbon Black server; registering it again", "id", id)
		if err := r.Ensure(ctx); err != nil {
			r.log.Error("feed registration failed", "error", err)
		}
	default:
		if ctx.Err() == nil {
			r.log.Error("feed sync failed; will retry", "id", id, "error", err)
		}
	}
}
