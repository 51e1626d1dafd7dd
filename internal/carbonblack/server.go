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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vtconnector/vtconnector/internal/httpserver"
)

// VerdictLister pages through every verdict the connector holds, for the
// HTML index; total is the number of verdicts.
type VerdictLister interface {
	ListVerdicts(ctx context.Context, offset, limit int) (vs []Verdict, total int, err error)
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
	Title      string
	Rows       []indexRow
	Total      int
	Page       int
	Pages      int
	First      int // 1-based number of the first row on the page
	Last       int
	PrevPage   int // 0 when there is none
	NextPage   int
	FeedReady  bool
	FeedCount  int
	FeedAt     string
	PageSize   int
	BeyondLast bool
}

type indexRow struct {
	MD5, SHA256, Verdict, Label, Link, Updated string
	Score                                      int
	Detected                                   bool
}

const indexTitle = "vtconnector — VirusTotal feed for Carbon Black"

// maxIndexPage keeps offsets far from overflow.
const maxIndexPage = 10_000_000

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	if s.verdicts == nil {
		plainError(w, http.StatusNotFound)
		return
	}
	page := 1
	if p := r.URL.Query().Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > maxIndexPage {
			http.Error(w, "400 bad request: page must be a number from 1", http.StatusBadRequest)
			return
		}
		page = n
	}
	size := s.cfg.PageSize
	vs, total, err := s.verdicts.ListVerdicts(r.Context(), (page-1)*size, size)
	if err != nil {
		s.log.Error("feed server: list verdicts", "page", page, "error", err)
		plainError(w, http.StatusInternalServerError)
		return
	}
	if len(vs) > size {
		vs = vs[:size]
	}
	p := indexPage{
		Title:    indexTitle,
		Total:    total,
		Page:     page,
		Pages:    max(1, (total+size-1)/size),
		PageSize: size,
		Rows:     make([]indexRow, 0, len(vs)),
	}
	if page > 1 {
		p.PrevPage = min(page-1, p.Pages)
	}
	if page < p.Pages {
		p.NextPage = page + 1
	}
	p.BeyondLast = page > p.Pages
	if len(vs) > 0 {
		p.First = (page-1)*size + 1
		p.Last = p.First + len(vs) - 1
	}
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
	var buf bytes.Buffer
	if err := indexTemplate().ExecuteTemplate(&buf, "index.html", p); err != nil {
		s.log.Error("feed server: render index", "page", page, "error", err)
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

func formatIndexTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
