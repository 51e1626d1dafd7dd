package vt

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/retry"
)

// Config shapes the simulated service. The zero value is a permissive,
// fault-free server with the documented defaults.
type Config struct {
	// QuotaPerMinute is the number of requests each API key may make in any
	// sliding 60 s window, counted at request receipt; 0 means unlimited.
	QuotaPerMinute int
	// QuotaPerDay is the number of requests each API key may make per UTC
	// calendar day; 0 means unlimited.
	QuotaPerDay int
	// QuotaPerMonth is the number of requests each API key may make per UTC
	// calendar month; 0 means unlimited.
	QuotaPerMonth int
	// Latency is added before every answer. A request whose context ends
	// while waiting gets no answer.
	Latency time.Duration
	// FaultRate is the fraction in [0,1] of authenticated requests answered
	// 503 TransientError, drawn from a sequence determined by Seed.
	FaultRate float64
	// Bare429Rate is the fraction of authenticated requests answered 429
	// with an empty body and no Retry-After, as when another tool shares
	// the key: the request counts in the key's use as that other tool's.
	Bare429Rate float64
	// MalformedRate is the fraction answered 200 with a truncated or
	// non-JSON body (the request is charged).
	MalformedRate float64
	// SlowRate is the fraction answered SlowDelay late (default 5 s).
	SlowRate  float64
	SlowDelay time.Duration
	// AnalysisDelay is how long an upload, rescan or URL submission takes to
	// go queued -> in-progress -> completed. Zero means 2 s; a negative value
	// means analyses complete immediately.
	AnalysisDelay time.Duration
	// UnknownPercent is the percentage of never-seen files, URLs, domains and
	// YARA rulesets that are unknown (404 NotFoundError), chosen
	// deterministically from the id. Zero means 10; -1 means none.
	UnknownPercent int
	// Keys are the accepted API keys; empty means any non-empty key.
	Keys []string
	// PremiumKeys may use premium endpoints (file download); other keys get
	// 403 ForbiddenError there.
	PremiumKeys []string
	// PrivateKeys may use the Private Scanning endpoints (/private/...);
	// other keys get 403 ForbiddenError there. Empty means every key may.
	PrivateKeys []string
	// Seed makes every synthetic object and the fault sequence reproducible.
	Seed int64
}

// Stats is a snapshot of what the server has answered.
type Stats struct {
	// Requests counts every request received, whatever its answer.
	Requests int
	// ByEndpoint counts requests by method and route pattern, e.g.
	// "GET /files/{id}"; requests matching no route count as "unmatched".
	ByEndpoint map[string]int
	// ByStatus counts answers by HTTP status.
	ByStatus map[int]int
	// QuotaExceeded counts 429 QuotaExceededError answers.
	QuotaExceeded int
	// Faults counts injected 503 TransientError answers.
	Faults int
	// Bare429, Malformed and Slow count the other injected faults.
	Bare429, Malformed, Slow int
	// Canceled counts requests whose context ended during Latency.
	Canceled int
	// ByKey counts authenticated requests per API key (uploads to an upload
	// URL count for the key that asked for the URL).
	ByKey map[string]int
}

const (
	apiPrefix      = "/api/v3/"
	uploadPrefix   = "/_ah/upload/"
	downloadPrefix = "/_ah/download/"

	// maxDirectBody is the largest body POST /files accepts (documented as 32MB).
	maxDirectBody int64 = 32 << 20
	// maxUploadURLFile is the largest file an upload URL accepts (650MB).
	maxUploadURLFile int64 = 650 << 20
	// multipartSlack is what multipart framing may add around a 650MB file.
	multipartSlack int64 = 1 << 20
	// maxKeptContent is the largest upload whose bytes are kept for download.
	maxKeptContent int64 = 32 << 20
	// maxStoredContent caps the bytes kept for all uploads together.
	maxStoredContent int64 = 256 << 20
	// maxFormBody caps non-upload POST bodies (URL submissions).
	maxFormBody int64 = 1 << 20

	defaultAnalysisDelay  = 2 * time.Second
	defaultUnknownPercent = 10
)

// Server is the simulator. It is an http.Handler; create it with New.
type Server struct {
	// Fixed at New.
	cfg           Config
	analysisDelay time.Duration
	unknownPct    uint64
	keys          map[string]bool
	premium       map[string]bool
	privateKeys   map[string]bool
	routes        []route
	yaraPool      map[string]yaraSeed // ruleset id -> what it detects
	yaraByFamily  map[string][]string // family -> ruleset ids

	statsMu sync.Mutex // guards stats
	stats   Stats

	mu           sync.Mutex               // guards everything below
	fixtures     map[string][]byte        // API path without prefix -> verbatim body
	fixtureFiles map[string]*fixtureFile  // any hash of a loaded file report
	fixtureURLs  map[string]string        // loaded URL report id -> URL
	synthFiles   map[string]*fileRecord   // synthetic files with analyses, by each hash
	synthAlias   map[string]string        // derived hash of a synthetic file -> the id it came from
	uploads      map[string]*fileRecord   // uploaded files, by each hash
	urls         map[string]*urlRecord    // URLs seen by base64 id or submitted, by sha256
	analyses     map[string]*analysis     // by analysis id
	private      map[string]*privateStore // what each API key scanned privately
	uploadSlots  map[string]*uploadSlot   // by upload URL token
	downloads    map[string]*fileRecord   // by download URL token
	storedBytes  int64                    // uploaded bytes kept for download
	seq          uint64                   // for unique tokens
	quotas       map[string]*keyQuota     // by API key
	faults       *rand.Rand               // the fault sequence
}

// New returns a simulator configured by cfg.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, keys: set(cfg.Keys), premium: set(cfg.PremiumKeys), privateKeys: set(cfg.PrivateKeys)}
	switch {
	case cfg.AnalysisDelay == 0:
		s.analysisDelay = defaultAnalysisDelay
	case cfg.AnalysisDelay > 0:
		s.analysisDelay = cfg.AnalysisDelay
	}
	switch {
	case cfg.UnknownPercent == 0:
		s.unknownPct = defaultUnknownPercent
	case cfg.UnknownPercent > 0:
		s.unknownPct = uint64(min(cfg.UnknownPercent, 100))
	}
	s.routes = s.buildRoutes()
	s.fixtures = map[string][]byte{}
	s.fixtureFiles = map[string]*fixtureFile{}
	s.fixtureURLs = map[string]string{}
	s.buildYaraPool()
	s.resetState()
	return s
}

// Reset forgets every upload, submission, analysis, synthetic object, quota
// counter and statistic, and restarts the fault sequence. Loaded test data
// stays.
func (s *Server) Reset() {
	s.mu.Lock()
	s.resetState()
	s.mu.Unlock()
	s.statsMu.Lock()
	s.stats = Stats{}
	s.statsMu.Unlock()
}

// resetState must be called with s.mu held (or before s is shared).
func (s *Server) resetState() {
	s.synthFiles = map[string]*fileRecord{}
	s.synthAlias = map[string]string{}
	s.uploads = map[string]*fileRecord{}
	s.urls = map[string]*urlRecord{}
	s.analyses = map[string]*analysis{}
	s.private = map[string]*privateStore{}
	s.uploadSlots = map[string]*uploadSlot{}
	s.downloads = map[string]*fileRecord{}
	s.quotas = map[string]*keyQuota{}
	s.storedBytes = 0
	s.seq = 0
	s.faults = rand.New(rand.NewPCG(uint64(s.cfg.Seed), 0x7a1f5eed))
}

// Stats returns a snapshot of the request counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := s.stats
	out.ByEndpoint = copyMap(s.stats.ByEndpoint)
	out.ByStatus = copyMap(s.stats.ByStatus)
	out.ByKey = copyMap(s.stats.ByKey)
	return out
}

func (s *Server) count(f func(st *Stats)) {
	s.statsMu.Lock()
	f(&s.stats)
	s.statsMu.Unlock()
}

func bump[K comparable](m *map[K]int, k K) {
	if *m == nil {
		*m = map[K]int{}
	}
	(*m)[k]++
}

// request carries what a handler needs besides the http.Request.
type request struct {
	received time.Time
	base     string   // scheme://host of the simulator as the client sees it
	key      string   // authenticated API key
	params   []string // path wildcards in order
}

func (rq *request) apiURL(path string) string { return rq.base + apiPrefix + path }

// route is one API endpoint under /api/v3/.
type route struct {
	method  string
	pattern string
	segs    []string
	handle  func(w http.ResponseWriter, r *http.Request, rq *request)
}

func (s *Server) buildRoutes() []route {
	table := []struct {
		method, pattern string
		h               func(w http.ResponseWriter, r *http.Request, rq *request)
	}{
		{http.MethodGet, "files/upload_url", s.handleUploadURL},
		{http.MethodPost, "files", s.handleUpload},
		{http.MethodGet, "files/{id}", s.handleGetFile},
		{http.MethodPost, "files/{id}/analyse", s.handleRescanFile},
		{http.MethodGet, "files/{id}/download", s.handleDownload},
		{http.MethodGet, "files/{id}/download_url", s.handleDownloadURL},
		{http.MethodGet, "analyses/{id}", s.handleGetAnalysis},
		{http.MethodGet, "analyses/{id}/item", s.handleAnalysisItem},
		{http.MethodPost, "urls", s.handleSubmitURL},
		{http.MethodGet, "urls/{id}", s.handleGetURL},
		{http.MethodPost, "urls/{id}/analyse", s.handleRescanURL},
		{http.MethodGet, "urls/{id}/last_serving_ip_address", s.handleURLServingIP},
		{http.MethodGet, "ip_addresses/{ip}", s.handleGetIP},
		{http.MethodGet, "ip_addresses/{ip}/resolutions", s.handleIPResolutions},
		{http.MethodGet, "domains/{domain}", s.handleGetDomain},
		{http.MethodGet, "domains/{domain}/resolutions", s.handleDomainResolutions},
		{http.MethodGet, "yara_rulesets/{id}", s.handleGetYaraRuleset},
		{http.MethodGet, "private/files/upload_url", s.privateOnly(s.handlePrivateUploadURL)},
		{http.MethodPost, "private/files", s.privateOnly(s.handlePrivateUpload)},
		{http.MethodGet, "private/files/{id}", s.privateOnly(s.handleGetPrivateFile)},
		{http.MethodGet, "private/analyses/{id}", s.privateOnly(s.handleGetPrivateAnalysis)},
		{http.MethodGet, "private/analyses/{id}/item", s.privateOnly(s.handlePrivateAnalysisItem)},
		{http.MethodPost, "private/urls", s.privateOnly(s.handlePrivateSubmitURL)},
		{http.MethodGet, "private/urls/{id}", s.privateOnly(s.handleGetPrivateURL)},
		{http.MethodGet, overallQuotasPattern, s.handleOverallQuotas},
	}
	routes := make([]route, 0, len(table))
	for _, t := range table {
		routes = append(routes, route{method: t.method, pattern: t.pattern, segs: strings.Split(t.pattern, "/"), handle: t.h})
	}
	return routes
}

// match is the outcome of routing a request.
type match struct {
	zone   int
	route  *route
	params []string
	label  string
	allow  []string // methods the path supports when route is nil
}

const (
	zoneNone = iota
	zoneAPI
	zoneUpload
	zoneDownload
)

func (s *Server) match(method, escapedPath string) match {
	switch {
	case strings.HasPrefix(escapedPath, apiPrefix):
		return s.matchAPI(method, escapedPath)
	case strings.HasPrefix(escapedPath, uploadPrefix):
		token := strings.TrimSuffix(strings.TrimPrefix(escapedPath, uploadPrefix), "/")
		m := match{zone: zoneUpload, params: []string{token}, label: method + " /_ah/upload/{token}"}
		if token == "" || strings.Contains(token, "/") {
			return match{label: "unmatched"}
		}
		if method != http.MethodPost {
			m.allow = []string{http.MethodPost}
		}
		return m
	case strings.HasPrefix(escapedPath, downloadPrefix):
		token := strings.TrimPrefix(escapedPath, downloadPrefix)
		m := match{zone: zoneDownload, params: []string{token}, label: method + " /_ah/download/{token}"}
		if token == "" || strings.Contains(token, "/") {
			return match{label: "unmatched"}
		}
		if method != http.MethodGet && method != http.MethodHead {
			m.allow = []string{http.MethodGet, http.MethodHead}
		}
		return m
	}
	return match{label: "unmatched"}
}

func (s *Server) matchAPI(method, escapedPath string) match {
	raw := strings.Split(strings.TrimPrefix(escapedPath, apiPrefix), "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		seg, err := url.PathUnescape(r)
		if err != nil {
			return match{zone: zoneAPI, label: "unmatched"}
		}
		segs[i] = seg
	}
	// Standard base64 URL ids may contain '/': fold them back into one id.
	if len(segs) > 2 && segs[0] == "urls" {
		if last := segs[len(segs)-1]; last == "analyse" || last == "last_serving_ip_address" {
			segs = []string{"urls", strings.Join(segs[1:len(segs)-1], "/"), last}
		} else {
			segs = []string{"urls", strings.Join(segs[1:], "/")}
		}
	}
	m := match{zone: zoneAPI, label: "unmatched"}
	pathMatched := false
	for i := range s.routes {
		rt := &s.routes[i]
		params, ok := matchSegs(rt.segs, segs)
		if !ok {
			continue
		}
		if rt.method == method {
			return match{zone: zoneAPI, route: rt, params: params, label: method + " /" + rt.pattern}
		}
		if !pathMatched {
			pathMatched = true
			m.label = method + " /" + rt.pattern
		}
		if !slices.Contains(m.allow, rt.method) {
			m.allow = append(m.allow, rt.method)
		}
	}
	return m
}

func matchSegs(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params []string
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			if segs[i] == "" {
				return nil, false
			}
			params = append(params, segs[i])
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP answers one request, in this order: Config.Latency (counted at
// receipt), x-apikey authentication (401), routing (404/405, not charged to
// quota), fault injection (503 not charged, bare 429 charged as another
// tool's request), quota (429, not charged), then the endpoint, slowed or
// its answer mangled by the other faults. Quota reads are never faulted
// nor charged. Every body is JSON except downloaded file bytes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rq := &request{received: time.Now(), base: baseURL(r)}
	m := s.match(r.Method, r.URL.EscapedPath())
	s.count(func(st *Stats) {
		st.Requests++
		bump(&st.ByEndpoint, m.label)
	})
	if !s.wait(r.Context()) {
		s.count(func(st *Stats) { st.Canceled++ })
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if sw.status != 0 {
			s.count(func(st *Stats) { bump(&st.ByStatus, sw.status) })
		}
	}()
	rq.params = m.params
	switch m.zone {
	case zoneAPI:
		s.serveAPI(sw, r, m, rq)
	case zoneUpload:
		s.serveUploadSlot(sw, r, m, rq)
	case zoneDownload:
		s.serveDownload(sw, r, m, rq)
	default:
		writeError(sw, http.StatusNotFound, "NotFoundError", "Resource not found")
	}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, m match, rq *request) {
	key := r.Header.Get("X-Apikey")
	if key == "" {
		writeError(w, http.StatusUnauthorized, "AuthenticationRequiredError", "X-Apikey header is missing")
		return
	}
	if len(s.keys) > 0 && !s.keys[key] {
		writeError(w, http.StatusUnauthorized, "WrongCredentialsError", "Wrong API key")
		return
	}
	rq.key = key
	s.count(func(st *Stats) { bump(&st.ByKey, key) })
	if m.route == nil {
		notRouted(w, r, m)
		return
	}
	s.serveAdmitted(w, r, m.route, rq)
}

func notRouted(w http.ResponseWriter, r *http.Request, m match) {
	if len(m.allow) > 0 {
		w.Header().Set("Allow", strings.Join(m.allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowedError",
			"Method "+r.Method+" is not allowed for "+r.URL.Path)
		return
	}
	writeError(w, http.StatusNotFound, "NotFoundError", "Resource not found")
}

// wait applies Config.Latency; it reports false when ctx ended first.
func (s *Server) wait(ctx context.Context) bool {
	if s.cfg.Latency <= 0 {
		return ctx.Err() == nil
	}
	return retry.Sleep(ctx, s.cfg.Latency) == nil
}

// nextSeq returns a fresh sequence number. s.mu must be held.
func (s *Server) nextSeq() uint64 {
	s.seq++
	return s.seq
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

// apiError is the body of every error answer.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var e apiError
	e.Error.Code, e.Error.Message = code, message
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalError", "simulator: encode response: "+err.Error())
		return
	}
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal encodes v as compact JSON without HTML escaping, so absolute links
// keep their '&'.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// obj is a JSON object; encoding/json sorts its keys, so output is stable.
type obj = map[string]any

func dataEnvelope(data any) obj { return obj{"data": data} }

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func copyMap[K comparable](m map[K]int) map[K]int {
	out := make(map[K]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
