package carbonblack

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/retry"
)

// Config shapes the simulated server. The zero value is a fault-free server
// that accepts any non-empty token.
type Config struct {
	// Token is the X-Auth-Token value every request must carry; requests
	// without it, or with another value, are answered 401. Empty means any
	// non-empty token is accepted.
	Token string
	// Latency is added before every answer. A request whose context ends
	// while waiting gets no answer.
	Latency time.Duration
	// FaultRate is the fraction in [0,1] of authenticated API requests
	// answered 500 or 503, drawn from a sequence determined by Seed.
	FaultRate float64
	// Seed makes synthetic binaries and the fault sequence reproducible.
	Seed int64
	// FeedClient fetches feed URLs when a feed is created or synchronised.
	// Nil means a client with a 30 s timeout; tests may inject one whose
	// Transport routes to an in-process handler.
	FeedClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// RejectPartialPUT makes PUT /api/v1/feed/{id} answer 400 unless the
	// body carries every field of the feed object (as a server that
	// replaces the whole record does); by default a PUT changes only the
	// fields it carries.
	RejectPartialPUT bool
}

// Stats is a snapshot of what the server has answered.
type Stats struct {
	// Requests counts every request received, whatever its answer.
	Requests int
	// ByEndpoint counts requests by route pattern, e.g.
	// "GET /api/v1/binary/{md5}/summary"; unrouted requests count as
	// "unmatched".
	ByEndpoint map[string]int
	// ByStatus counts answers by HTTP status.
	ByStatus map[int]int
	// Unauthorized counts 401 answers.
	Unauthorized int
	// Faults counts injected 500/503 answers.
	Faults int
	// Canceled counts requests whose context ended during Latency.
	Canceled int
	// Searches counts binary searches answered 200.
	Searches int
	// Downloads counts binary zips served, DownloadedBytes their filedata.
	Downloads       int
	DownloadedBytes int64
	// FeedFetches counts fetches of feed URLs (create and synchronize).
	FeedFetches int
	// Syncs counts synchronisations applied (FullSyncs of them full);
	// SyncFailures counts those whose fetch or validation failed.
	Syncs        int
	FullSyncs    int
	SyncFailures int
}

const (
	// defaultRows is the page size when rows is absent (REST API docs).
	defaultRows = 10
	// maxRows caps rows: maxSearchResultRows of the real /api/info.
	maxRows = 1000
	// maxCopiedLen is what the server keeps of a large file: "if file is
	// > 25MB [copied_mod_len] will be less than orig_mod_len" (REST API docs).
	maxCopiedLen int64 = 25 << 20
	// maxFeedBody caps a fetched feed document.
	maxFeedBody int64 = 64 << 20
	// maxRequestBody caps JSON request bodies.
	maxRequestBody int64 = 1 << 20
)

// Server is the simulator. It is an http.Handler; create it with New.
type Server struct {
	cfg    Config
	now    func() time.Time
	client *http.Client
	mux    *http.ServeMux

	statsMu sync.Mutex // guards stats
	stats   Stats

	mu       sync.Mutex // guards everything below
	binaries map[string]*record
	order    []*record // insertion order, for deterministic iteration
	byAdded  []*record // by server_added_timestamp, then md5: searches sorted by it
	// journal is every record stored, in order (an updated binary again):
	// what feeds' query IOCs catch up on (see [Server.catchUp]).
	journal  []*record
	sensors  map[string]int
	synthSeq uint64
	facetSeq int64
	feeds    map[int]*feed
	feedList []*feed // feeds by ID; nil when it must be rebuilt
	nextFeed int
	faults   *rand.Rand
}

// New returns a simulator configured by cfg.
func New(cfg Config) *Server {
	s := &Server{
		cfg:      cfg,
		now:      cfg.Now,
		client:   cfg.FeedClient,
		binaries: map[string]*record{},
		sensors:  map[string]int{},
		feeds:    map[int]*feed{},
		nextFeed: 1,
		faults:   rand.New(rand.NewPCG(uint64(cfg.Seed), 0xcb5e_ed00_fa17)),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 30 * time.Second}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /api/info", s.handleInfo)
	s.mux.HandleFunc("GET /api/v1/binary", s.handleSearch)
	s.mux.HandleFunc("GET /api/v1/binary/{md5}", s.handleDownload)
	s.mux.HandleFunc("GET /api/v1/binary/{md5}/summary", s.handleSummary)
	s.mux.HandleFunc("GET /api/v1/feed", s.handleFeedList)
	s.mux.HandleFunc("POST /api/v1/feed", s.handleFeedCreate)
	s.mux.HandleFunc("GET /api/v1/feed/{id}", s.handleFeedGet)
	s.mux.HandleFunc("PUT /api/v1/feed/{id}", s.handleFeedUpdate)
	s.mux.HandleFunc("DELETE /api/v1/feed/{id}", s.handleFeedDelete)
	s.mux.HandleFunc("POST /api/v1/feed/{id}/synchronize", s.handleFeedSync)
	return s
}

// Stats returns a snapshot of the request counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := s.stats
	out.ByEndpoint = copyMap(s.stats.ByEndpoint)
	out.ByStatus = copyMap(s.stats.ByStatus)
	return out
}

func (s *Server) count(f func(st *Stats)) {
	s.statsMu.Lock()
	f(&s.stats)
	s.statsMu.Unlock()
}

// ServeHTTP answers one request: latency, authentication, fault injection,
// then the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := s.mux.Handler(r)
	label := pattern
	if label == "" {
		label = "unmatched"
	}
	s.count(func(st *Stats) {
		st.Requests++
		bump(&st.ByEndpoint, label)
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
	if !s.authorized(r) {
		s.count(func(st *Stats) { st.Unauthorized++ })
		writeError(sw, http.StatusUnauthorized, "unauthorized", "missing or invalid X-Auth-Token header")
		return
	}
	if pattern != "" {
		if status := s.fault(); status != 0 {
			s.count(func(st *Stats) { st.Faults++ })
			writeError(sw, status, "server_error", http.StatusText(status))
			return
		}
	}
	s.mux.ServeHTTP(sw, r) // not h: only ServeHTTP sets the path values
}

func (s *Server) authorized(r *http.Request) bool {
	token := r.Header.Get("X-Auth-Token")
	if token == "" {
		return false
	}
	return s.cfg.Token == "" || token == s.cfg.Token
}

// fault draws the next element of the fault sequence: 0, 500 or 503.
func (s *Server) fault() int {
	if s.cfg.FaultRate <= 0 {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.Float64() >= s.cfg.FaultRate {
		return 0
	}
	if s.faults.IntN(2) == 0 {
		return http.StatusInternalServerError
	}
	return http.StatusServiceUnavailable
}

// wait applies Config.Latency; it reports false when ctx ended first.
func (s *Server) wait(ctx context.Context) bool {
	if s.cfg.Latency <= 0 {
		return ctx.Err() == nil
	}
	return retry.Sleep(ctx, s.cfg.Latency) == nil
}

// handleInfo answers GET /api/info with the top-level keys and value types
// of a real Cb Response 6.2 answer.
func (s *Server) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"version":                 "6.2.0.171114.1158",
		"version_release":         "6.2.0-1",
		"cloud_install":           false,
		"binaryPageSize":          10,
		"processPageSize":         10,
		"binaryOrder":             "",
		"processOrder":            "",
		"maxSearchResultRows":     maxRows,
		"maxRowsSolrReportQuery":  10000,
		"searchExportCount":       1000,
		"banningEnabled":          true,
		"cblrEnabled":             true,
		"liveResponseAutoAttach":  true,
		"linuxInstallerExists":    true,
		"osxInstallerExists":      true,
		"vdiGloballyEnabled":      false,
		"timestampDeltaThreshold": 5,
		"features": map[string]any{
			"immutable_documents": true,
			"event_exclusions":    false,
			"thirdparty_sharing":  false,
			"ipv6_support":        true,
		},
		"user_preferences": map[string]any{
			"default":                false,
			"minimalLeftNavigation":  false,
			"savedSearches":          []any{},
			"processSearchSortOrder": "",
		},
	})
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

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// apiError is the body of every error answer. Reason
// "query_malformed_syntax" is the one cbapi maps to QuerySyntaxError.
type apiError struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, reason, message string) {
	writeJSON(w, status, apiError{Reason: reason, Message: message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func bump[K comparable](m *map[K]int, k K) {
	if *m == nil {
		*m = map[K]int{}
	}
	(*m)[k]++
}

func copyMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return nil
	}
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
