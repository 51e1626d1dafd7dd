package carbonblack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vtconnector/vtconnector/internal/httpserver"
)

// VerdictLister pages through every verdict the connector holds by key
// (Verdict.Key), for the HTML index: a page costs its rows, however deep.
type VerdictLister interface {
	// ListVerdicts returns up to limit verdicts in key order: those
	// whose key is after from ("" for the first ones) or, when back,
	// before it ("" for the last ones).
	ListVerdicts(ctx context.Context, from string, back bool, limit int) ([]Verdict, error)
	// CountVerdicts is how many verdicts there are, from a kept count
	// (never by counting them).
	CountVerdicts(ctx context.Context) (int64, error)
}

// ServerConfig configures the feed server.
type ServerConfig struct {
	// Addr is the listen address, host:port (":0" picks a free port).
	Addr string
	// Mount, when set, adds routes to the server's mux (the status page
	// and metrics); they are behind the same authentication.
	Mount func(mux *http.ServeMux)
	// CertFile and KeyFile, when both set, make the server speak HTTPS.
	CertFile, KeyFile string
	// Username and Password, when both set, require HTTP basic
	// authentication on every route but /healthz (Carbon Black's feed
	// settings carry a username and password for this).
	Username, Password string
	// PublicPages serves the inventory (/binaries.html), the status page
	// and the metrics to every client. When false (the default) they are
	// served only to loopback clients, or to clients that gave the feed
	// credentials when those are set; the feed and /healthz stay served
	// to everyone, as the original served them.
	PublicPages bool
	// PageSize is the number of verdicts per page of the HTML index
	// (default 100, at most 1000).
	PageSize int
	// Timeouts; zero means the default of internal/httpserver.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration // a large feed over a slow link
	IdleTimeout       time.Duration
	ShutdownTimeout   time.Duration // in-flight requests' grace period
}

// Validate reports configuration mistakes.
func (c ServerConfig) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("the listen address is empty"))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("cert_file and key_file must both be set or both be empty"))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, errors.New("the feed username and password must both be set or both be empty"))
	}
	if c.PageSize < 0 || c.PageSize > maxPageSize {
		errs = append(errs, fmt.Errorf("page size %d: must be 0 (default) to %d", c.PageSize, maxPageSize))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("carbonblack: feed server: %w", err)
	}
	return nil
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func (c ServerConfig) withDefaults() ServerConfig {
	if c.PageSize <= 0 {
		c.PageSize = defaultPageSize
	}
	c.PageSize = min(c.PageSize, maxPageSize)
	return c
}

// Server serves the feed to Carbon Black (/feed.json), an HTML index of
// the verdicts (/binaries.html) and a health check (/healthz).
type Server struct {
	cfg      ServerConfig
	feed     *FeedCache
	verdicts VerdictLister
	log      *slog.Logger
	runner   *httpserver.Server
	authUser [sha256.Size]byte
	authPass [sha256.Size]byte
	auth     bool
}

// NewServer returns a server for feed and verdicts; verdicts may be nil,
// in which case there is no HTML index.
func NewServer(cfg ServerConfig, feed *FeedCache, verdicts VerdictLister, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg.withDefaults(),
		feed:     feed,
		verdicts: verdicts,
		log:      log,
	}
	if cfg.Username != "" && cfg.Password != "" {
		s.auth = true
		s.authUser = sha256.Sum256([]byte(cfg.Username))
		s.authPass = sha256.Sum256([]byte(cfg.Password))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /feed.json", s.serveFeed)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/binaries.html", http.StatusFound)
	})
	mux.HandleFunc("GET /binaries.html", s.serveIndex)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	if cfg.Mount != nil {
		cfg.Mount(mux) // e.g. /status and /metrics
	}
	s.runner = httpserver.New(httpserver.Config{
		Name: "feed server", Addr: cfg.Addr, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout,
		IdleTimeout: cfg.IdleTimeout, ShutdownTimeout: cfg.ShutdownTimeout,
		OnListen: func(url string) { log.Info("feed server listening", "url", url, "basic_auth", s.auth) },
	}, s.guard(mux), log)
	return s
}

// Handler is the server's HTTP handler, with authentication, panic
// recovery and logging (for tests and for embedding).
func (s *Server) Handler() http.Handler { return s.runner.Handler() }

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.runner.Ready() }

// Addr is the address the server listens on (the real port when the
// configured one is 0), or "" before it listens.
func (s *Server) Addr() string { return s.runner.Addr() }

// Run listens and serves until ctx ends, then shuts down gracefully: it
// stops accepting connections and gives in-flight requests up to
// ShutdownTimeout to finish. It returns nil after a shutdown caused by ctx,
// and an error when the configuration is wrong or the server cannot listen
// or fails. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if err := s.cfg.Validate(); err != nil {
		return err
	}
	if err := s.runner.Run(ctx); err != nil {
		return fmt.Errorf("carbonblack: feed server: %w", err)
	}
	s.log.Info("feed server stopped", "addr", s.Addr())
	return nil
}

// guard sets the security headers of every answer and requires the basic
// authentication credentials, when configured, on every route but
// /healthz.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if s.auth && r.URL.Path != "/healthz" && !s.authorized(r) {
			s.log.Info("feed server: authentication failed", "path", r.URL.Path, "remote", r.RemoteAddr)
			h.Set("WWW-Authenticate", `Basic realm="vtconnector", charset="UTF-8"`)
			plainError(w, http.StatusUnauthorized)
			return
		}
		if !s.cfg.PublicPages && !s.auth && !publicPath(r.URL.Path) && !fromLoopback(r) {
			s.log.Info("feed server: page refused to a remote client (listener_public_pages=false)", "path", r.URL.Path, "remote", r.RemoteAddr)
			plainError(w, http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// publicPath: what every client may fetch without credentials, as from
// the original connector: the feed (and its redirecting root) and the
// health probe.
func publicPath(p string) bool {
	return p == "/feed.json" || p == "/healthz" || p == "/"
}

// fromLoopback reports whether the request came from this host.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// authorized compares the credentials in constant time (over their
// SHA-256, so that their lengths do not leak either).
func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	return subtle.ConstantTimeCompare(u[:], s.authUser[:])&subtle.ConstantTimeCompare(p[:], s.authPass[:]) == 1
}

// plainError writes the status's standard text and nothing else.
func plainError(w http.ResponseWriter, code int) {
	http.Error(w, strconv.Itoa(code)+" "+strings.ToLower(http.StatusText(code)), code)
}

// ---------------------------------------------------------------------
// /feed.json

func (s *Server) serveFeed(w http.ResponseWriter, r *http.Request) {
	snap := s.feed.Current()
	h := w.Header()
	if snap == nil {
		h.Set("Retry-After", "5")
		plainError(w, http.StatusServiceUnavailable)
		return
	}
	write, size, etag := snap.WriteTo, snap.Size(), snap.ETag
	gz := acceptsGzip(r.Header.Get("Accept-Encoding"))
	if gz {
		write, size, etag = snap.WriteGzipTo, snap.GzipSize(), snap.GzipETag()
	}
	h.Set("ETag", etag)
	h.Set("Last-Modified", snap.RenderedAt.UTC().Format(http.TimeFormat))
	h.Set("Vary", "Accept-Encoding")
	h.Set("Cache-Control", "no-cache")
	if notModified(r, etag, snap.RenderedAt) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	if gz {
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = write(w) // the snapshot's pieces, in order
	}
}

// notModified evaluates If-None-Match (weak comparison, as RFC 9110
// §13.1.2 asks) or, when it is absent, If-Modified-Since.
func notModified(r *http.Request, etag string, modified time.Time) bool {
	if inm := r.Header.Values("If-None-Match"); len(inm) > 0 {
		for _, list := range inm {
			for tag := range strings.SplitSeq(list, ",") {
				tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
				if tag == "*" || tag == strings.TrimPrefix(etag, "W/") {
					return true
				}
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		return err == nil && !modified.Truncate(time.Second).After(t)
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip:
// "gzip" (or "x-gzip", or "*" when gzip is not listed) with a non-zero
// quality.
func acceptsGzip(header string) bool {
	star := false
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || math.IsNaN(f) {
					f = 0
				}
				q = f
			}
		}
		switch coding {
		case "gzip", "x-gzip":
			return q > 0
		case "*":
			star = q > 0
		}
	}
	return star
}

// ---------------------------------------------------------------------
// /healthz

type healthReply struct {
	Status         string     `json:"status"`
	FeedReports    int        `json:"feed_reports"`
	FeedRenderedAt *time.Time `json:"feed_rendered_at,omitempty"`
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	rep, code := healthReply{Status: "feed not rendered yet"}, http.StatusServiceUnavailable
	if snap := s.feed.Current(); snap != nil {
		at := snap.RenderedAt
		rep, code = healthReply{Status: "ok", FeedReports: snap.Reports, FeedRenderedAt: &at}, http.StatusOK
	}
	b, _ := json.Marshal(rep) // cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// ---------------------------------------------------------------------
// /binaries.html

//go:embed templates/*.html
var templateFS embed.FS

var indexTemplate = sync.OnceValue(func() *template.Template {
	return template.Must(template.ParseFS(templateFS, "templates/*.html"))
})

// indexPage is what templates/index.html shows.
type indexPage struct {
	Title     string
	Rows      []indexRow
	Total     int64
	Prev      string // key of the page's first row, when rows lie before it
	Next      string // key of the page's last row, when rows lie after it
	First     bool   // the first page (no rows before it)
	FeedReady bool
	FeedCount int
	FeedAt    string
	PageSize  int
	Beyond    bool // no rows from the key asked for: it is past an end
}

type indexRow struct {
	MD5, SHA256, Verdict, Label, Link, Updated string
	Score                                      int
	Detected                                   bool
}

const indexTitle = "vtconnector — VirusTotal feed for Carbon Black"

// maxIndexKey bounds the key a page link carries (a verdict's key is an
// MD5).
const maxIndexKey = 128

// indexQuery is where a page of the index starts: after a key, before a
// key, at the end (last), or at the start (none of them).
type indexQuery struct {
	from string
	back bool
}

// parseIndexQuery reads ?after=KEY, ?before=KEY or ?last=1. The page
// numbers of older links (?page=N) are gone: pages are addressed by key,
// so that a deep page costs what the first does; ?page=1 is the first
// page, any other number is answered 400 with a pointer to the first page.
func parseIndexQuery(q url.Values) (indexQuery, error) {
	for k, vs := range q {
		if len(vs) > 1 {
			return indexQuery{}, fmt.Errorf("%s is given %d times", k, len(vs))
		}
	}
	var (
		iq   indexQuery
		seen []string
	)
	for _, k := range []string{"after", "before", "last", "page"} {
		if q.Has(k) {
			seen = append(seen, k)
		}
	}
	if len(seen) > 1 {
		return indexQuery{}, fmt.Errorf("give one of after, before, last and page, not %s", strings.Join(seen, " and "))
	}
	switch {
	case q.Has("after"), q.Has("before"):
		iq.back = q.Has("before")
		iq.from = q.Get("after") + q.Get("before")
		if iq.from == "" || len(iq.from) > maxIndexKey || !utf8.ValidString(iq.from) || strings.IndexFunc(iq.from, unicode.IsControl) >= 0 {
			return indexQuery{}, fmt.Errorf("after and before take a verdict's key (the MD5 of a row) of 1 to %d printable characters", maxIndexKey)
		}
	case q.Has("last"):
		if q.Get("last") != "1" {
			return indexQuery{}, errors.New("last takes the value 1")
		}
		iq.back = true
	case q.Has("page"):
		if q.Get("page") != "1" {
			return indexQuery{}, errors.New("pages are no longer numbered: they are addressed by key (the index's links carry it); start at /binaries.html")
		}
	}
	return iq, nil
}

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	if s.verdicts == nil {
		plainError(w, http.StatusNotFound)
		return
	}
	iq, err := parseIndexQuery(r.URL.Query())
	if err != nil {
		http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	p, err := s.indexPage(r.Context(), iq)
	if err != nil {
		s.log.Error("feed server: list verdicts", "from", iq.from, "back", iq.back, "error", err)
		plainError(w, http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := indexTemplate().ExecuteTemplate(&buf, "index.html", p); err != nil {
		s.log.Error("feed server: render index", "error", err)
		plainError(w, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy",
		"default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	_, _ = w.Write(buf.Bytes())
}

// indexPage reads one page: one more row than it shows, to know whether
// rows lie beyond it, and one row on its other side, to know whether rows
// lie before it; the total comes from the kept count.
func (s *Server) indexPage(ctx context.Context, iq indexQuery) (indexPage, error) {
	size := s.cfg.PageSize
	vs, err := s.verdicts.ListVerdicts(ctx, iq.from, iq.back, size+1)
	if err != nil {
		return indexPage{}, err
	}
	more := len(vs) > size // rows beyond the page, in its direction
	if more && iq.back {
		vs = vs[len(vs)-size:]
	} else if more {
		vs = vs[:size]
	}
	if iq.back && !more && iq.from != "" {
		// Back at the start, with a short page: show the first page.
		return s.indexPage(ctx, indexQuery{})
	}
	p := indexPage{Title: indexTitle, PageSize: size, Rows: make([]indexRow, 0, len(vs))}
	if p.Total, err = s.verdicts.CountVerdicts(ctx); err != nil {
		return indexPage{}, err
	}
	if len(vs) > 0 {
		first, last := vs[0].Key, vs[len(vs)-1].Key
		// The other side: behind a forward page, ahead of a backward one.
		other := iq.from != ""
		if other {
			edge := first
			if iq.back {
				edge = last
			}
			probe, err := s.verdicts.ListVerdicts(ctx, edge, !iq.back, 1)
			if err != nil {
				return indexPage{}, err
			}
			other = len(probe) > 0
		}
		before, after := other, more
		if iq.back {
			before, after = more, other
		}
		if before {
			p.Prev = first
		}
		if after {
			p.Next = last
		}
	}
	p.First = p.Prev == "" && len(vs) > 0
	p.Beyond = len(vs) == 0 && iq.from != ""
	if snap := s.feed.Current(); snap != nil {
		p.FeedReady, p.FeedCount, p.FeedAt = true, snap.Reports, formatIndexTime(snap.RenderedAt)
	}
	for _, v := range vs {
		row := indexRow{
			MD5:     v.MD5,
			SHA256:  v.SHA256,
			Verdict: "not found",
			Label:   cleanText(v.Label, 200),
			Updated: formatIndexTime(v.UpdatedAt),
			Score:   v.Score(),
		}
		if v.Found {
			row.Verdict = fmt.Sprintf("%d / %d", v.Positives, v.Total)
			row.Detected = v.Positives > 0
			row.Link = verdictLink(v)
		}
		p.Rows = append(p.Rows, row)
	}
	return p, nil
}

func formatIndexTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
