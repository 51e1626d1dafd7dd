package carbonblack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Feed is a registered threat-intelligence feed and its synchronisation
// state, as returned by [Server.Feeds].
type Feed struct {
	// The fields of the API's feed object.
	ID                 int
	Name               string // feedinfo name; alliance_*_<lower-case Name> are its tags
	DisplayName        string
	FeedURL            string
	Enabled            bool
	UseProxy           bool
	ValidateServerCert bool
	Username           string
	Password           string
	ProviderURL        string
	Summary            string
	TechData           string
	Category           string
	Icon               string
	IconSmall          string
	ProviderRating     float64
	ManuallyAdded      bool

	// Created is when POST /api/v1/feed registered it.
	Created time.Time
	// Syncs counts synchronisations that fetched the feed (FullSyncs of
	// them full); failed ones count in SyncFailures.
	Syncs        int
	FullSyncs    int
	SyncFailures int
	// LastSync is when the last successful synchronisation ran; LastSyncFull
	// says whether it was full, LastSyncNotModified whether the feed server
	// answered 304 to its If-None-Match.
	LastSync            time.Time
	LastSyncFull        bool
	LastSyncNotModified bool
	// LastError is why the last synchronisation failed ("" when it
	// succeeded).
	LastError string
	// Reports are the reports the server holds, by ID; the tags are computed
	// from them.
	Reports []Report
	// LastFetched are the valid reports of the document fetched at the last
	// synchronisation, in document order.
	LastFetched []Report
	// LastApplied are the IDs of the reports the last synchronisation added
	// or changed (an incremental one only takes new reports and reports
	// whose timestamp changed); LastRemoved those a full one withdrew.
	LastApplied []string
	LastRemoved []string
	// Rejected are the reports of the last fetched document that failed
	// validation (see carbonblack/cbfeeds); they were ignored.
	Rejected []Rejection
	// Warnings are accepted oddities of the last fetched document (an empty
	// or multi-line title, an unsupported query IOC).
	Warnings []string
}

// Report is one report of a feed.
type Report struct {
	ID          string
	Title       string
	Description string
	Link        string
	Score       int
	Timestamp   int64
	Tags        []string
	MD5         []string
	SHA256      []string
	IPv4        []string
	IPv6        []string
	DNS         []string
	JA3         []string
	JA3S        []string
	Query       *QueryIOC
}

// QueryIOC is a report's query IOC. Those with IndexType "modules" are
// binary searches; the binaries they match are tagged.
type QueryIOC struct {
	IndexType   string
	SearchQuery []string
}

// Rejection is a report the server refused.
type Rejection struct {
	// Index is the report's position in the document.
	Index int
	// ReportID is the report's id as written in the document ("" when
	// absent; integer ids are printed).
	ReportID string
	Reason   string
}

// feed is a feed as the server stores it.
type feed struct {
	pub   Feed
	set   feedSettings
	held  map[string]*heldReport
	etag  string
	byMD5 map[string][]string // upper-case md5 -> report ids (see feedindex.go)
	bySHA map[string][]string // lower-case sha256 -> report ids
	// queries are the held reports with a "modules" query IOC.
	queries map[string]*heldReport
	// syncMu serialises the feed's synchronisations; it is taken before
	// s.mu. held, etag, the indexes and queries change only under both, so
	// a synchronisation may read them holding syncMu alone.
	syncMu sync.Mutex
}

// heldReport is a report the server holds. Its Report never changes once
// stored (a changed report is a new heldReport).
type heldReport struct {
	Report
	applied time.Time
	query   *heldQuery // nil without a "modules" query IOC
}

// Feeds returns the registered feeds by ID.
func (s *Server) Feeds() []Feed {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Feed, 0, len(s.feeds))
	for _, f := range s.sortedFeeds() {
		out = append(out, f.snapshot())
	}
	return out
}

// Tags returns the alliance scores the feeds give the binary md5, by
// lower-case feed name, e.g. {"virustotalconnector": 57}. It is empty when
// no feed tags the binary or the server does not have it.
func (s *Server) Tags(md5sum string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	rec, ok := s.lookup(md5sum)
	if !ok {
		return out
	}
	for k, v := range s.allianceFields(rec) {
		if name, ok := strings.CutPrefix(k, "alliance_score_"); ok {
			n, _ := toInt(v)
			out[name] = int(n)
		}
	}
	return out
}

// sortedFeeds returns the feeds by ID. s.mu must be held.
func (s *Server) sortedFeeds() []*feed {
	if s.feedList == nil {
		ids := slices.Sorted(maps.Keys(s.feeds))
		s.feedList = make([]*feed, len(ids))
		for i, id := range ids {
			s.feedList[i] = s.feeds[id]
		}
	}
	return s.feedList
}

func (f *feed) snapshot() Feed {
	out := f.pub
	out.Reports = make([]Report, 0, len(f.held))
	for _, id := range slices.Sorted(maps.Keys(f.held)) {
		out.Reports = append(out.Reports, cloneReport(f.held[id].Report))
	}
	out.LastFetched = cloneReports(f.pub.LastFetched)
	out.LastApplied = slices.Clone(f.pub.LastApplied)
	out.LastRemoved = slices.Clone(f.pub.LastRemoved)
	out.Rejected = slices.Clone(f.pub.Rejected)
	out.Warnings = slices.Clone(f.pub.Warnings)
	return out
}

func cloneReports(rs []Report) []Report {
	if rs == nil {
		return nil
	}
	out := make([]Report, len(rs))
	for i, r := range rs {
		out[i] = cloneReport(r)
	}
	return out
}

func cloneReport(r Report) Report {
	r.Tags = slices.Clone(r.Tags)
	r.MD5, r.SHA256 = slices.Clone(r.MD5), slices.Clone(r.SHA256)
	r.IPv4, r.IPv6, r.DNS = slices.Clone(r.IPv4), slices.Clone(r.IPv6), slices.Clone(r.DNS)
	r.JA3, r.JA3S = slices.Clone(r.JA3), slices.Clone(r.JA3S)
	if r.Query != nil {
		q := *r.Query
		q.SearchQuery = slices.Clone(q.SearchQuery)
		r.Query = &q
	}
	return r
}

// allianceFields are the alliance_*_<feed> fields the feeds give rec: the
// highest score of the reports hitting it, that report's link, all their
// ids and when they were last applied. s.mu must be held.
func (s *Server) allianceFields(rec *record) map[string]any {
	type agg struct {
		score   int
		link    string
		best    string
		ids     []string
		updated time.Time
	}
	var aggs map[string]*agg
	var names []string
	for _, f := range s.sortedFeeds() {
		ids := f.byMD5[rec.md5]
		if bySHA := f.bySHA[rec.sha256]; rec.sha256 != "" && len(bySHA) > 0 {
			ids = append(slices.Clone(ids), bySHA...)
		}
		if len(ids) == 0 {
			continue
		}
		name := strings.ToLower(f.pub.Name)
		a := aggs[name]
		for _, id := range ids {
			h := f.held[id]
			if a == nil {
				a = &agg{score: h.Score, link: h.Link, best: id}
				if aggs == nil {
					aggs = map[string]*agg{}
				}
				aggs[name] = a
				names = append(names, name)
			}
			if h.Score > a.score || h.Score == a.score && id < a.best {
				a.score, a.link, a.best = h.Score, h.Link, id
			}
			a.ids = append(a.ids, id)
			if h.applied.After(a.updated) {
				a.updated = h.applied
			}
		}
	}
	if len(aggs) == 0 {
		return nil
	}
	out := make(map[string]any, 4*len(aggs))
	for _, name := range names {
		a := aggs[name]
		slices.Sort(a.ids)
		out["alliance_score_"+name] = int64(a.score)
		out["alliance_link_"+name] = a.link
		out["alliance_data_"+name] = stringsToAny(slices.Compact(a.ids))
		out["alliance_updated_"+name] = a.updated.UTC().Format("2006-01-02T15:04:05Z")
	}
	return out
}

// rating is a feed's provider_rating, always written with a decimal point
// like the real server (3.0).
type rating float64

func (r rating) MarshalJSON() ([]byte, error) {
	s := strconv.FormatFloat(float64(r), 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return []byte(s), nil
}

// feedWire is the API's feed object (GET /api/v1/feed entries).
type feedWire struct {
	ID                 int     `json:"id"`
	Name               string  `json:"name"`
	DisplayName        string  `json:"display_name"`
	FeedURL            string  `json:"feed_url"`
	Enabled            bool    `json:"enabled"`
	UseProxy           bool    `json:"use_proxy"`
	ValidateServerCert bool    `json:"validate_server_cert"`
	Username           *string `json:"username"`
	Password           *string `json:"password"`
	SSLClientCrt       *string `json:"ssl_client_crt"`
	SSLClientKey       *string `json:"ssl_client_key"`
	ProviderURL        string  `json:"provider_url"`
	Summary            string  `json:"summary"`
	TechData           string  `json:"tech_data"`
	Category           *string `json:"category"`
	Icon               *string `json:"icon"`
	IconSmall          *string `json:"icon_small"`
	ProviderRating     rating  `json:"provider_rating"`
	LocalRating        *int64  `json:"local_rating"`
	Order              *int64  `json:"order"`
	ManuallyAdded      bool    `json:"manually_added"`
	Requires           *string `json:"requires"`
	RequiresWho        *string `json:"requires_who"`
	RequiresWhat       *string `json:"requires_what"`
}

// feedSettings are the settings a client sets (POST and PUT).
type feedSettings struct {
	sslClientCrt, sslClientKey string
	localRating, order         *int64
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// wire returns the API object; the password is returned as stored, since
// cbapi PUTs back the whole object it read.
func (f *feed) wire() feedWire {
	p, set := f.pub, f.set
	return feedWire{
		ID: p.ID, Name: p.Name, DisplayName: p.DisplayName, FeedURL: p.FeedURL,
		Enabled: p.Enabled, UseProxy: p.UseProxy, ValidateServerCert: p.ValidateServerCert,
		Username: nullable(p.Username), Password: nullable(p.Password),
		SSLClientCrt: nullable(set.sslClientCrt), SSLClientKey: nullable(set.sslClientKey),
		ProviderURL: p.ProviderURL, Summary: p.Summary, TechData: p.TechData,
		Category: nullable(p.Category), Icon: nullable(p.Icon), IconSmall: nullable(p.IconSmall),
		ProviderRating: rating(p.ProviderRating), LocalRating: set.localRating, Order: set.order,
		ManuallyAdded: p.ManuallyAdded,
	}
}

func (s *Server) feedByPath(w http.ResponseWriter, r *http.Request) (*feed, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	f, ok := s.feeds[id]
	if err != nil || !ok {
		writeError(w, http.StatusNotFound, "not_found", "feed "+r.PathValue("id")+" not found")
		return nil, false
	}
	return f, true
}

func (s *Server) handleFeedList(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	out := []feedWire{}
	for _, f := range s.sortedFeeds() {
		out = append(out, f.wire())
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleFeedGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f, ok := s.feedByPath(w, r)
	var out feedWire
	if ok {
		out = f.wire()
	}
	s.mu.Unlock()
	if ok {
		writeJSON(w, http.StatusOK, out)
	}
}

// feedBody is a decoded POST or PUT body: the keys present, raw.
type feedBody map[string]json.RawMessage

func readFeedBody(r *http.Request) (feedBody, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if int64(len(raw)) > maxRequestBody {
		return nil, errors.New("body too large")
	}
	var body feedBody
	if err := json.Unmarshal(raw, &body); err != nil || body == nil {
		return nil, errors.New("body must be a JSON object")
	}
	return body, nil
}

// str reads a string or null key; ok is false when the key is absent.
func (b feedBody) str(key string) (string, bool, error) {
	raw, ok := b[key]
	if !ok {
		return "", false, nil
	}
	var v *string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", true, fmt.Errorf("%s must be a string", key)
	}
	if v == nil {
		return "", true, nil
	}
	return *v, true, nil
}

// boolean reads a boolean (or "true"/"false", or null for false).
func (b feedBody) boolean(key string) (bool, bool, error) {
	raw, ok := b[key]
	if !ok {
		return false, false, nil
	}
	var v any
	_ = json.Unmarshal(raw, &v)
	switch x := v.(type) {
	case nil:
		return false, true, nil
	case bool:
		return x, true, nil
	case string:
		if bv, err := strconv.ParseBool(x); err == nil {
			return bv, true, nil
		}
	}
	return false, true, fmt.Errorf("%s must be a boolean", key)
}

// integer reads an integer or null.
func (b feedBody) integer(key string) (*int64, bool, error) {
	raw, ok := b[key]
	if !ok {
		return nil, false, nil
	}
	var v *int64
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, true, fmt.Errorf("%s must be an integer", key)
	}
	return v, true, nil
}

// apply sets the client settings present in b on f.
func (f *feed) apply(b feedBody) error {
	set := &f.set
	var errs []error
	for key, dst := range map[string]*bool{"enabled": &f.pub.Enabled, "use_proxy": &f.pub.UseProxy, "validate_server_cert": &f.pub.ValidateServerCert} {
		v, ok, err := b.boolean(key)
		errs = append(errs, err)
		if ok && err == nil {
			*dst = v
		}
	}
	for key, dst := range map[string]*string{"feed_url": &f.pub.FeedURL, "username": &f.pub.Username, "password": &f.pub.Password, "ssl_client_crt": &set.sslClientCrt, "ssl_client_key": &set.sslClientKey} {
		v, ok, err := b.str(key)
		errs = append(errs, err)
		if ok && err == nil {
			*dst = v
		}
	}
	for key, dst := range map[string]**int64{"local_rating": &set.localRating, "order": &set.order} {
		v, ok, err := b.integer(key)
		errs = append(errs, err)
		if ok && err == nil {
			*dst = v
		}
	}
	return errors.Join(errs...)
}

// handleFeedCreate registers a feed: like the real server, it fetches
// feed_url to read the feedinfo, and answers 500 when it cannot retrieve a
// valid feed (cbapi's feed tools and cbint report a 500 as "usually because
// the server cannot retrieve the feed").
func (s *Server) handleFeedCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readFeedBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	staged := &feed{pub: Feed{Enabled: true}}
	if err := staged.apply(body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if staged.pub.FeedURL == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "feed_url is required")
		return
	}
	if err := checkFeedURL(staged.pub.FeedURL); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	fetched, err := s.fetchFeed(r.Context(), staged.pub, "")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "feed_retrieval_failed", err.Error())
		return
	}
	doc, err := parseFeed(fetched.body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "invalid_feed", err.Error())
		return
	}
	s.mu.Lock()
	staged.pub.ID = s.nextFeed
	s.nextFeed++
	staged.pub.Created = s.now()
	staged.pub.ManuallyAdded = true
	staged.pub.Name = doc.info.name
	staged.setInfo(doc.info)
	staged.held = map[string]*heldReport{}
	staged.byMD5, staged.bySHA, staged.queries = indexHeld(staged.held)
	s.feeds[staged.pub.ID] = staged
	s.feedList = nil
	out := staged.wire()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (f *feed) setInfo(info feedInfo) {
	f.pub.DisplayName = info.displayName
	f.pub.ProviderURL = info.providerURL
	f.pub.Summary = info.summary
	f.pub.TechData = info.techData
	f.pub.Category = info.category
	f.pub.Icon = info.icon
	f.pub.IconSmall = info.iconSmall
	f.pub.ProviderRating = info.providerRating
}

func (s *Server) handleFeedUpdate(w http.ResponseWriter, r *http.Request) {
	body, err := readFeedBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if missing := missingKeys(body); s.cfg.RejectPartialPUT && len(missing) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_request", "partial update: the feed object lacks "+strings.Join(missing, ", "))
		return
	}
	if u, ok, err := body.str("feed_url"); ok && err == nil {
		if err := checkFeedURL(u); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.feedByPath(w, r)
	if !ok {
		return
	}
	before, beforeSet := f.pub, f.set
	if err := f.apply(body); err != nil {
		f.pub, f.set = before, beforeSet
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, f.wire())
}

func (s *Server) handleFeedDelete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.feedByPath(w, r)
	if !ok {
		return
	}
	delete(s.feeds, f.pub.ID)
	s.feedList = nil
	writeJSON(w, http.StatusOK, map[string]string{"result": "success"})
}

// handleFeedSync fetches the feed and applies it before answering (the real
// server synchronises in the background and answers at once, so a failed
// fetch is only recorded in the feed's state, not in the answer). The body
// {"full_sync": bool} is optional; without it the sync is full, cbapi's
// default. A disabled feed is answered 409. Only applying the prepared
// changes holds s.mu: searches wait for that, not for the fetch or for
// working through the document.
func (s *Server) handleFeedSync(w http.ResponseWriter, r *http.Request) {
	full, err := syncBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	f, ok := s.syncableFeed(w, r)
	if !ok {
		return
	}
	// One sync of a feed at a time: each starts from the reports and ETag
	// the previous one left, and planSync reads them without s.mu.
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	s.mu.Lock()
	id, conn, etag := f.pub.ID, f.pub, f.etag
	s.mu.Unlock()
	if full {
		etag = "" // a full sync always re-reads the document
	}

	fetched, err := s.fetchFeed(r.Context(), conn, etag)
	var doc parsedFeed
	if err == nil && !fetched.notModified {
		doc, err = parseFeed(fetched.body)
	}
	var p syncPlan
	if err == nil {
		p = s.planSync(f, doc, fetched, full)
	}

	s.mu.Lock()
	ok = s.feeds[id] == f
	if ok {
		if err != nil {
			f.pub.SyncFailures++
			f.pub.LastError = err.Error()
		} else {
			s.applySync(f, p)
		}
	}
	s.mu.Unlock()
	s.count(func(st *Stats) {
		switch {
		case err != nil:
			st.SyncFailures++
		case full:
			st.Syncs++
			st.FullSyncs++
		default:
			st.Syncs++
		}
	})
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("feed %d not found", id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "success"})
}

// syncBody reads whether a synchronize request asks for a full sync.
func syncBody(r *http.Request) (bool, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err != nil {
		return false, fmt.Errorf("read body: %w", err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return true, nil
	}
	var body struct {
		FullSync *bool `json:"full_sync"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return false, errors.New("body must be {\"full_sync\": true|false}")
	}
	return body.FullSync == nil || *body.FullSync, nil
}

// syncableFeed returns the feed of the path, answering 404 when there is
// none and 409 when it is disabled.
func (s *Server) syncableFeed(w http.ResponseWriter, r *http.Request) (*feed, bool) {
	s.mu.Lock()
	f, ok := s.feedByPath(w, r)
	disabled := ok && !f.pub.Enabled
	var id int
	if ok {
		id = f.pub.ID
	}
	s.mu.Unlock()
	if disabled {
		writeError(w, http.StatusConflict, "feed_disabled", fmt.Sprintf("feed %d is disabled", id))
		return nil, false
	}
	return f, ok
}

// syncPlan is a synchronisation prepared without s.mu, for applySync.
type syncPlan struct {
	full    bool
	fetched fetchResult
	doc     parsedFeed
	at      time.Time
	// applied are the new and changed reports, in document order, their
	// query IOCs already run.
	applied []*heldReport
	// A full sync's reports (unchanged ones shared with the feed's), their
	// indexes, and the ids it withdraws.
	held         map[string]*heldReport
	byMD5, bySHA map[string][]string
	queries      map[string]*heldReport
	removed      []string
}

// planSync prepares the synchronisation of a fetched document: an
// incremental sync takes new reports and reports whose timestamp changed;
// a full one replaces the reports (withdrawing those no longer in the
// feed), so it builds the new reports' indexes here. f.syncMu must be held
// and s.mu not.
func (s *Server) planSync(f *feed, doc parsedFeed, fetched fetchResult, full bool) syncPlan {
	p := syncPlan{full: full, fetched: fetched, doc: doc, at: s.now()}
	if fetched.notModified {
		return p
	}
	for _, r := range doc.reports {
		old, ok := f.held[r.ID]
		if !ok || old.Timestamp != r.Timestamp || full && !reflect.DeepEqual(old.Report, r) {
			p.applied = append(p.applied, newHeld(r, p.at))
		}
	}
	s.runQueries(p.applied)
	if full {
		p.replaceAll(f.held)
	}
	return p
}

// replaceAll builds a full sync's reports from the document's, sharing the
// unchanged ones of old, and their indexes.
func (p *syncPlan) replaceAll(old map[string]*heldReport) {
	p.held = make(map[string]*heldReport, len(p.doc.reports))
	for _, r := range p.doc.reports {
		p.held[r.ID] = old[r.ID]
	}
	for _, h := range p.applied {
		p.held[h.ID] = h
	}
	p.removed = []string{}
	for id := range old {
		if _, ok := p.held[id]; !ok {
			p.removed = append(p.removed, id)
		}
	}
	slices.Sort(p.removed)
	p.byMD5, p.bySHA, p.queries = indexHeld(p.held)
}

// applySync stores a planned synchronisation: it swaps in a full sync's
// reports and indexes, or moves the index entries of an incremental one's
// reports, then runs the query IOCs over the binaries stored meanwhile.
// s.mu must be held.
func (s *Server) applySync(f *feed, p syncPlan) {
	f.pub.Syncs++
	if p.full {
		f.pub.FullSyncs++
	}
	f.pub.LastSync, f.pub.LastSyncFull, f.pub.LastSyncNotModified = p.at, p.full, p.fetched.notModified
	f.pub.LastError = ""
	f.pub.LastApplied, f.pub.LastRemoved = []string{}, []string{}
	if p.fetched.notModified {
		return
	}
	f.etag = p.fetched.etag
	f.setInfo(p.doc.info)
	f.pub.LastFetched, f.pub.Rejected = p.doc.reports, p.doc.rejected
	for _, h := range p.applied {
		f.pub.LastApplied = append(f.pub.LastApplied, h.ID)
	}
	if p.full {
		f.held, f.byMD5, f.bySHA, f.queries = p.held, p.byMD5, p.bySHA, p.queries
		f.pub.LastRemoved = p.removed
	} else {
		for _, h := range p.applied {
			f.put(h)
		}
	}
	s.catchUp(f)
	f.pub.Warnings = append(p.doc.warnings, f.queryWarnings()...)
}

// modulesQuery compiles the search_query of a "modules" query IOC: each is
// a URL query whose q, and cb.q.<field>=<value> terms, are ANDed.
func modulesQuery(searches []string) (node, error) {
	var or orNode
	for _, sq := range searches {
		vals, err := url.ParseQuery(sq)
		if err != nil {
			return nil, err
		}
		var parts []string
		for key, vs := range vals {
			for _, v := range vs {
				switch {
				case key == "q":
					parts = append(parts, "("+v+")")
				case strings.HasPrefix(key, "cb.q."):
					parts = append(parts, strings.TrimPrefix(key, "cb.q.")+`:"`+strings.ReplaceAll(v, `"`, `\"`)+`"`)
				}
			}
		}
		sort.Strings(parts)
		n, _, err := parseQuery(strings.Join(parts, " "))
		if err != nil {
			return nil, err
		}
		or = append(or, n)
	}
	return or, nil
}

// fetchResult is one fetch of a feed URL.
type fetchResult struct {
	body        []byte
	etag        string
	notModified bool
}

func checkFeedURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("feed_url %q: want an http or https URL", raw)
	}
	return nil
}

// fetchFeed GETs the feed's URL with its credentials; etag, when set, is
// sent as If-None-Match.
func (s *Server) fetchFeed(ctx context.Context, conn Feed, etag string) (fetchResult, error) {
	s.count(func(st *Stats) { st.FeedFetches++ })
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, conn.FeedURL, nil)
	if err != nil {
		return fetchResult{}, fmt.Errorf("fetch feed %s: %w", conn.FeedURL, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "Carbon Black EDR feed synchronizer (vtconnector simulator)")
	if conn.Username != "" || conn.Password != "" {
		req.SetBasicAuth(conn.Username, conn.Password)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fetchResult{}, fmt.Errorf("fetch feed %s: %w", conn.FeedURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && etag != "" {
		return fetchResult{etag: etag, notModified: true}, nil
	}
	if resp.StatusCode != http.StatusOK {
		return fetchResult{}, fmt.Errorf("fetch feed %s: feed server answered %s", conn.FeedURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFeedBody+1))
	if err != nil {
		return fetchResult{}, fmt.Errorf("fetch feed %s: read: %w", conn.FeedURL, err)
	}
	if int64(len(body)) > maxFeedBody {
		return fetchResult{}, fmt.Errorf("fetch feed %s: larger than %d bytes", conn.FeedURL, maxFeedBody)
	}
	return fetchResult{body: body, etag: resp.Header.Get("ETag")}, nil
}
