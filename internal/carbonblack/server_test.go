package carbonblack

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/vtconnector/vtconnector/internal/httpserver/httpservertest"
	"github.com/vtconnector/vtconnector/internal/logbuf"
)

// TestMain checks that no test leaves a goroutine behind (the feed server
// starts several). It is the package's only TestMain.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// stubVerdictLister serves verdicts from a slice.
type stubVerdictLister struct {
	vs      []Verdict
	err     error
	panicky bool
	entered chan struct{} // when set, receives once a call started
	release chan struct{} // when set, calls wait for it
}

func (l *stubVerdictLister) ListVerdicts(ctx context.Context, from string, back bool, limit int) ([]Verdict, error) {
	if l.entered != nil {
		l.entered <- struct{}{}
	}
	if l.release != nil {
		<-l.release
	}
	if l.panicky {
		panic("lister exploded: secret-panic-detail")
	}
	if l.err != nil {
		return nil, l.err
	}
	vs := l.sorted()
	if !back {
		i := 0
		for i < len(vs) && from != "" && vs[i].Key <= from {
			i++
		}
		return vs[i:min(i+limit, len(vs))], nil
	}
	j := len(vs)
	for j > 0 && from != "" && vs[j-1].Key >= from {
		j--
	}
	return vs[max(j-limit, 0):j], nil
}

// sorted is the verdicts by key (the MD5 when no key is set).
func (l *stubVerdictLister) sorted() []Verdict {
	vs := slices.Clone(l.vs)
	for i := range vs {
		if vs[i].Key == "" {
			vs[i].Key = vs[i].MD5
		}
	}
	slices.SortFunc(vs, func(a, b Verdict) int { return strings.Compare(a.Key, b.Key) })
	return vs
}

func (l *stubVerdictLister) CountVerdicts(context.Context) (int64, error) {
	if l.err != nil {
		return 0, l.err
	}
	return int64(len(l.vs)), nil
}

// debugLogger logs everything to b.
func debugLogger(b *logbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newTestFeedServer serves a rendered golden feed through httptest.
func newTestFeedServer(t *testing.T, cfg ServerConfig, l VerdictLister) (*httptest.Server, *FeedCache, *logbuf.Buffer) {
	t.Helper()
	c := newFixedFeedCache()
	if err := c.Render(goldenFeedInfo(t), BuildReports(goldenVerdicts(), FeedOptions{IncludeSHA256: true})); err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	srv := httptest.NewServer(NewServer(cfg, c, l, debugLogger(logs)).Handler())
	t.Cleanup(srv.Close)
	return srv, c, logs
}

// get sends a GET with headers; the transport does not add or decode
// gzip on its own.
func feedGet(t *testing.T, client *http.Client, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	return feedDo(t, client, http.MethodGet, url, hdr)
}

func feedDo(t *testing.T, client *http.Client, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	tr := client.Transport.(*http.Transport).Clone()
	tr.DisableCompression = true
	t.Cleanup(tr.CloseIdleConnections)
	c := *client
	c.Transport = tr
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestFeedJSON(t *testing.T) {
	srv, cache, _ := newTestFeedServer(t, ServerConfig{}, nil)
	snap := cache.Current()
	url := srv.URL + "/feed.json"

	resp, body := feedGet(t, srv.Client(), url, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, snap.Body()) {
		t.Fatalf("status %d, body matches snapshot: %v", resp.StatusCode, bytes.Equal(body, snap.Body()))
	}
	want := map[string]string{
		"Content-Type":     "application/json",
		"Content-Length":   fmt.Sprint(len(snap.Body())),
		"Etag":             snap.ETag,
		"Last-Modified":    "Sat, 02 Mar 2024 08:30:00 GMT",
		"Vary":             "Accept-Encoding",
		"Content-Encoding": "",
		"Cache-Control":    "no-cache",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}

	t.Run("If-None-Match gives 304", func(t *testing.T) {
		resp, body := feedGet(t, srv.Client(), url, map[string]string{"If-None-Match": snap.ETag})
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("Etag") != snap.ETag {
			t.Errorf("status %d, %d bytes, ETag %q", resp.StatusCode, len(body), resp.Header.Get("Etag"))
		}
	})
	t.Run("a list with the tag gives 304", func(t *testing.T) {
		resp, _ := feedGet(t, srv.Client(), url, map[string]string{"If-None-Match": `"other", ` + snap.ETag})
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("the gzip tag does not match the identity representation", func(t *testing.T) {
		resp, _ := feedGet(t, srv.Client(), url, map[string]string{"If-None-Match": snap.GzipETag()})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("If-Modified-Since gives 304", func(t *testing.T) {
		resp, _ := feedGet(t, srv.Client(), url, map[string]string{"If-Modified-Since": "Sat, 02 Mar 2024 08:30:00 GMT"})
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("a weak form of the tag gives 304", func(t *testing.T) {
		resp, _ := feedGet(t, srv.Client(), url, map[string]string{"If-None-Match": "W/" + snap.ETag})
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("a star gives 304 without entity headers", func(t *testing.T) {
		resp, _ := feedGet(t, srv.Client(), url, map[string]string{"If-None-Match": "*", "Accept-Encoding": "gzip"})
		if resp.StatusCode != http.StatusNotModified || resp.Header.Get("Content-Encoding") != "" ||
			resp.Header.Get("Content-Type") != "" || resp.Header.Get("Etag") != snap.GzipETag() {
			t.Errorf("status %d, headers %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("an older If-Modified-Since gives 200", func(t *testing.T) {
		resp, _ := feedGet(t, srv.Client(), url, map[string]string{"If-Modified-Since": "Sat, 02 Mar 2024 08:29:59 GMT"})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("If-None-Match wins over If-Modified-Since", func(t *testing.T) {
		resp, _ := feedGet(t, srv.Client(), url, map[string]string{"If-None-Match": `"stale"`, "If-Modified-Since": "Sat, 02 Mar 2024 08:30:00 GMT"})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("HEAD has the length but no body", func(t *testing.T) {
		resp, body := feedDo(t, srv.Client(), http.MethodHead, url, nil)
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Length") != fmt.Sprint(len(snap.Body())) {
			t.Errorf("status %d, %d bytes, Content-Length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
		}
	})
	t.Run("a re-render changes the tag", func(t *testing.T) {
		if err := cache.Render(goldenFeedInfo(t), nil); err != nil {
			t.Fatal(err)
		}
		resp, body := feedGet(t, srv.Client(), url, map[string]string{"If-None-Match": snap.ETag})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Etag") == snap.ETag || !bytes.Equal(body, cache.Current().Body()) {
			t.Errorf("status %d, ETag %q", resp.StatusCode, resp.Header.Get("Etag"))
		}
	})
}

func TestFeedJSONGzip(t *testing.T) {
	srv, cache, _ := newTestFeedServer(t, ServerConfig{}, nil)
	snap := cache.Current()
	url := srv.URL + "/feed.json"

	resp, body := feedGet(t, srv.Client(), url, map[string]string{"Accept-Encoding": "gzip, deflate"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	if got := resp.Header.Get("Content-Length"); got != fmt.Sprint(len(body)) || len(body) != len(snap.Gzip()) {
		t.Errorf("Content-Length %s, body %d bytes, gzip %d bytes", got, len(body), len(snap.Gzip()))
	}
	if resp.Header.Get("Etag") != snap.GzipETag() || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("ETag %q, Vary %q", resp.Header.Get("Etag"), resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, snap.Body()) {
		t.Errorf("gzip body does not decompress to the feed (err %v)", err)
	}

	resp, body = feedGet(t, srv.Client(), url, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": snap.GzipETag()})
	if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("conditional gzip GET: status %d, %d bytes", resp.StatusCode, len(body))
	}

	// Go's own client asks for gzip and decodes it transparently.
	resp2, err := srv.Client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	plain, _ = io.ReadAll(resp2.Body)
	if !resp2.Uncompressed || !bytes.Equal(plain, snap.Body()) {
		t.Errorf("default client: uncompressed %v, body matches %v", resp2.Uncompressed, bytes.Equal(plain, snap.Body()))
	}
}

// TestFeedJSONLargeHasContentLength checks Content-Length on bodies too
// large for net/http to measure on its own, in both encodings.
func TestFeedJSONLargeHasContentLength(t *testing.T) {
	srv, cache, _ := newTestFeedServer(t, ServerConfig{}, nil)
	if err := cache.Render(goldenFeedInfo(t), BuildReports(syntheticVerdicts(2000), FeedOptions{IncludeSHA256: true})); err != nil {
		t.Fatal(err)
	}
	snap := cache.Current()
	for _, tc := range []struct {
		encoding string
		want     []byte
	}{{"", snap.Body()}, {"gzip", snap.Gzip()}} {
		resp, body := feedGet(t, srv.Client(), srv.URL+"/feed.json", map[string]string{"Accept-Encoding": tc.encoding})
		if len(tc.want) < 64<<10 {
			t.Fatalf("%q body is only %d bytes", tc.encoding, len(tc.want))
		}
		if resp.ContentLength != int64(len(tc.want)) || len(resp.TransferEncoding) != 0 || !bytes.Equal(body, tc.want) {
			t.Errorf("%q: Content-Length %d, Transfer-Encoding %v, want %d bytes", tc.encoding, resp.ContentLength, resp.TransferEncoding, len(tc.want))
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"GZIP", true},
		{"deflate, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"br, x-gzip", true},
		{"*", true},
		{"*;q=0", false},
		{"gzip;q=0, *", false},
		{"identity", false},
		{"gzipx", false},
		{"gzip;q=bogus", false},
	} {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestFeedNotRenderedYet(t *testing.T) {
	srv := httptest.NewServer(NewServer(ServerConfig{}, NewFeedCache(), nil, nil).Handler())
	defer srv.Close()
	resp, _ := feedGet(t, srv.Client(), srv.URL+"/feed.json", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("feed.json: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp, body := feedGet(t, srv.Client(), srv.URL+"/healthz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "not rendered") {
		t.Errorf("healthz: status %d, body %s", resp.StatusCode, body)
	}
}

func TestHealthz(t *testing.T) {
	srv, cache, _ := newTestFeedServer(t, ServerConfig{}, nil)
	resp, body := feedGet(t, srv.Client(), srv.URL+"/healthz", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status": "ok", "feed_reports": float64(cache.Current().Reports), "feed_rendered_at": "2024-03-02T08:30:00Z"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("healthz (-want +got):\n%s", diff)
	}
}

func TestRoutes(t *testing.T) {
	srv, _, _ := newTestFeedServer(t, ServerConfig{}, &stubVerdictLister{})
	for _, tc := range []struct {
		method, path string
		code         int
		contentType  string
	}{
		{http.MethodGet, "/", http.StatusFound, ""},
		{http.MethodGet, "/nope", http.StatusNotFound, "text/plain; charset=utf-8"},
		{http.MethodGet, "/feed.json/x", http.StatusNotFound, "text/plain; charset=utf-8"},
		{http.MethodGet, "/reports/Binary_1", http.StatusNotFound, "text/plain; charset=utf-8"},
		{http.MethodPost, "/feed.json", http.StatusMethodNotAllowed, "text/plain; charset=utf-8"},
		{http.MethodGet, "/binaries.html", http.StatusOK, "text/html; charset=utf-8"},
		{http.MethodGet, "/healthz", http.StatusOK, "application/json"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, _ := feedDo(t, srv.Client(), tc.method, srv.URL+tc.path, nil)
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.contentType)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
			if tc.code == http.StatusFound && resp.Header.Get("Location") != "/binaries.html" {
				t.Errorf("Location %q", resp.Header.Get("Location"))
			}
		})
	}
}

func TestBasicAuth(t *testing.T) {
	srv, _, logs := newTestFeedServer(t, ServerConfig{Username: "cb", Password: "s3cret"}, &stubVerdictLister{})
	auth := func(user, pass string) map[string]string {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(user, pass)
		return map[string]string{"Authorization": r.Header.Get("Authorization")}
	}
	for _, tc := range []struct {
		name string
		path string
		hdr  map[string]string
		code int
	}{
		{"no credentials", "/feed.json", nil, http.StatusUnauthorized},
		{"wrong password", "/feed.json", auth("cb", "wrong"), http.StatusUnauthorized},
		{"wrong user", "/feed.json", auth("admin", "s3cret"), http.StatusUnauthorized},
		{"password prefix", "/feed.json", auth("cb", "s3cre"), http.StatusUnauthorized},
		{"not basic", "/feed.json", map[string]string{"Authorization": "Bearer s3cret"}, http.StatusUnauthorized},
		{"right credentials", "/feed.json", auth("cb", "s3cret"), http.StatusOK},
		{"index needs credentials", "/binaries.html", nil, http.StatusUnauthorized},
		{"index with credentials", "/binaries.html", auth("cb", "s3cret"), http.StatusOK},
		{"unknown path needs credentials", "/nope", nil, http.StatusUnauthorized},
		{"unknown path with credentials", "/nope", auth("cb", "s3cret"), http.StatusNotFound},
		{"healthz is open", "/healthz", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := feedGet(t, srv.Client(), srv.URL+tc.path, tc.hdr)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if tc.code == http.StatusUnauthorized {
				if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="vtconnector"`) {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if bytes.Contains(body, []byte("s3cret")) || bytes.Contains(body, []byte("reports")) {
					t.Errorf("401 body leaks: %s", body)
				}
			}
		})
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Error("the log contains the password")
	}
}

func TestServerConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
		ok   bool
	}{
		{"defaults", ServerConfig{Addr: "127.0.0.1:4000"}, true},
		{"auth and TLS", ServerConfig{Addr: ":4000", Username: "u", Password: "p", CertFile: "c.pem", KeyFile: "k.pem"}, true},
		{"no address", ServerConfig{}, false},
		{"user without password", ServerConfig{Addr: ":4000", Username: "u"}, false},
		{"password without user", ServerConfig{Addr: ":4000", Password: "p"}, false},
		{"cert without key", ServerConfig{Addr: ":4000", CertFile: "c.pem"}, false},
		{"page size too large", ServerConfig{Addr: ":4000", PageSize: 5000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
	// Run refuses a half-configured authentication rather than serving
	// the feed openly.
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", Username: "u"}, NewFeedCache(), nil, nil)
	if err := s.Run(t.Context()); err == nil {
		t.Error("Run accepted a username without a password")
	}
}

// indexTestVerdicts are seven verdicts, hostile values included.
func indexTestVerdicts() []Verdict {
	vs := goldenVerdicts()
	// On page 2 of 3 when pages have three rows.
	return slices.Insert(vs, 3, Verdict{
		MD5: "<b>NOTANMD5</b>", SHA256: `"><script>alert(1)</script>`, Found: true, Positives: 1, Total: 2,
		Label: "<img src=x onerror=alert(1)>\n\x00label", UpdatedAt: feedTestTime.Add(time.Hour),
		Link: "javascript:alert(document.cookie)",
	})
}

func TestIndexGolden(t *testing.T) {
	l := &stubVerdictLister{vs: indexTestVerdicts()}
	srv, _, _ := newTestFeedServer(t, ServerConfig{PageSize: 3}, l)
	third := l.sorted()[2].Key
	for _, tc := range []struct {
		query, golden string
	}{
		{"?after=" + url.QueryEscape(third), "index.golden.html"}, // the second page
		{"?last=1", "index-page3.golden.html"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := feedGet(t, srv.Client(), srv.URL+"/binaries.html"+tc.query, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
			compareGolden(t, tc.golden, body)
			for _, bad := range []string{"<script>", "<img", "javascript:", "<b>", "\x00"} {
				if bytes.Contains(body, []byte(bad)) {
					t.Errorf("page contains unescaped %q", bad)
				}
			}
			if !bytes.Contains(body, []byte("<title>vtconnector — VirusTotal feed for Carbon Black")) {
				t.Error("page has not the expected title")
			}
		})
	}
}

// indexLink is the target of the link with rel in an index page, "" when
// there is none.
func indexLink(t *testing.T, body []byte, rel string) string {
	t.Helper()
	m := regexp.MustCompile(`<a href="([^"]*)" rel="` + rel + `">`).FindSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(string(m[1]))
}

// indexRows is the MD5s of an index page's rows.
func indexRows(body []byte) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<tr(?: class="detected")?><td class="hash">([^<]*)</td>`).FindAllSubmatch(body, -1) {
		out = append(out, html.UnescapeString(string(m[1])))
	}
	return out
}

// TestIndexPages pages through the index by its links: forward from the
// first page and back from the last, across every page boundary, with
// pages that end exactly at the last row and with one row over.
func TestIndexPages(t *testing.T) {
	for _, n := range []int{7, 9, 10} {
		t.Run(fmt.Sprintf("%d verdicts", n), func(t *testing.T) {
			var vs []Verdict
			for i := range n {
				vs = append(vs, Verdict{MD5: fmt.Sprintf("%032X", i*0x777), Found: i%2 == 0, Positives: i % 2, Total: 3})
			}
			l := &stubVerdictLister{vs: vs}
			var want []string
			for _, v := range l.sorted() {
				want = append(want, v.MD5)
			}
			srv, _, _ := newTestFeedServer(t, ServerConfig{PageSize: 3}, l)
			walk := func(start, rel string) (rows []string, pages int) {
				for link := start; link != ""; pages++ {
					if pages > n {
						t.Fatalf("more pages than rows following %s links", rel)
					}
					resp, body := feedGet(t, srv.Client(), srv.URL+link, nil)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("%s: status %d", link, resp.StatusCode)
					}
					if !bytes.Contains(body, []byte(fmt.Sprintf("%d verdicts in all", n))) {
						t.Errorf("%s: the total is missing", link)
					}
					got := indexRows(body)
					if len(got) == 0 || len(got) > 3 {
						t.Fatalf("%s: %d rows", link, len(got))
					}
					if rel == "next" {
						rows = append(rows, got...)
					} else {
						// Back at the start the first page comes whole:
						// keep the rows not seen yet.
						for len(rows) > 0 && len(got) > 0 && got[len(got)-1] >= rows[0] {
							got = got[:len(got)-1]
						}
						rows = append(got, rows...)
					}
					link = indexLink(t, body, rel)
				}
				return rows, pages
			}
			fwd, pages := walk("/binaries.html", "next")
			if !slices.Equal(fwd, want) || pages != (n+2)/3 {
				t.Errorf("forward: %d pages, rows %v\nwant %v", pages, fwd, want)
			}
			back, _ := walk("/binaries.html?last=1", "prev")
			if !slices.Equal(back, want) {
				t.Errorf("back: rows %v\nwant %v", back, want)
			}
		})
	}

	srv, _, _ := newTestFeedServer(t, ServerConfig{PageSize: 3}, &stubVerdictLister{vs: indexTestVerdicts()})
	for _, tc := range []struct {
		query string
		code  int
		has   []string
		hasNo []string
	}{
		{"", http.StatusOK, []string{"7 verdicts in all", `rel="next"`, "from the first"}, []string{`rel="prev"`}},
		{"?page=1", http.StatusOK, []string{`rel="next"`}, []string{`rel="prev"`}},
		{"?last=1", http.StatusOK, []string{`rel="prev"`}, []string{`rel="next"`}},
		{"?after=" + strings.Repeat("F", 32), http.StatusOK, []string{"no verdicts past this point", `href="/binaries.html?last=1"`}, []string{"<table>"}},
		{"?before=0", http.StatusOK, []string{`rel="next"`, "from the first"}, []string{`rel="prev"`}},
		{"?page=2", http.StatusBadRequest, []string{"addressed by key"}, nil},
		{"?page=0", http.StatusBadRequest, nil, nil},
		{"?page=abc", http.StatusBadRequest, nil, nil},
		{"?after=", http.StatusBadRequest, nil, nil},
		{"?before=", http.StatusBadRequest, nil, nil},
		{"?after=A&after=B", http.StatusBadRequest, nil, nil},
		{"?after=A&before=B", http.StatusBadRequest, []string{"not after and before"}, nil},
		{"?after=" + strings.Repeat("A", 129), http.StatusBadRequest, nil, nil},
		{"?after=%00A", http.StatusBadRequest, nil, nil},
		{"?after=%FF", http.StatusBadRequest, nil, nil},
		{"?last=yes", http.StatusBadRequest, nil, nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := feedGet(t, srv.Client(), srv.URL+"/binaries.html"+tc.query, nil)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, body)
			}
			for _, s := range tc.has {
				if !bytes.Contains(body, []byte(s)) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tc.hasNo {
				if bytes.Contains(body, []byte(s)) {
					t.Errorf("page has %q", s)
				}
			}
		})
	}

	t.Run("no verdicts", func(t *testing.T) {
		srv, _, _ := newTestFeedServer(t, ServerConfig{}, &stubVerdictLister{})
		resp, body := feedGet(t, srv.Client(), srv.URL+"/binaries.html", nil)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("No verdicts yet.")) || bytes.Contains(body, []byte("<nav")) {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("no lister", func(t *testing.T) {
		srv, _, _ := newTestFeedServer(t, ServerConfig{}, nil)
		resp, _ := feedGet(t, srv.Client(), srv.URL+"/binaries.html", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestIndexErrorsDoNotLeak(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lister *stubVerdictLister
		secret string
	}{
		{"lister error", &stubVerdictLister{err: errors.New("store: list: dial tcp db.internal:5432: password=hunter2")}, "hunter2"},
		{"lister panic", &stubVerdictLister{panicky: true}, "secret-panic-detail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, logs := newTestFeedServer(t, ServerConfig{}, tc.lister)
			resp, body := feedGet(t, srv.Client(), srv.URL+"/binaries.html", nil)
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("status %d, want 500", resp.StatusCode)
			}
			if string(body) != "500 internal server error\n" {
				t.Errorf("body %q, want the generic message", body)
			}
			if !strings.Contains(logs.String(), tc.secret) {
				t.Errorf("the log lacks the cause %q:\n%s", tc.secret, logs)
			}
			// The server keeps serving.
			if resp, _ := feedGet(t, srv.Client(), srv.URL+"/healthz", nil); resp.StatusCode != http.StatusOK {
				t.Errorf("healthz after the failure: %d", resp.StatusCode)
			}
		})
	}
}

func TestRunServesAndShutsDownGracefully(t *testing.T) {
	lister := &stubVerdictLister{vs: goldenVerdicts(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	c := newFixedFeedCache()
	if err := c.Render(goldenFeedInfo(t), nil); err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, c, lister, nil)
	if s.Addr() != "" {
		t.Errorf("Addr before Run = %q", s.Addr())
	}
	cancel, wait := httpservertest.Start(t, s)
	host, port, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Addr = %q", s.Addr())
	}
	base := "http://" + s.Addr()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	type result struct {
		code int
		body []byte
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := client.Get(base + "/binaries.html")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		inflight <- result{resp.StatusCode, b, err}
	}()
	<-lister.entered // the request is being handled
	cancel()         // shutdown starts while it is in flight
	close(lister.release)

	r := <-inflight
	if r.err != nil || r.code != http.StatusOK || !bytes.Contains(r.body, []byte("</html>")) {
		t.Errorf("in-flight request: code %d, err %v", r.code, r.err)
	}
	if err := wait(); err != nil {
		t.Errorf("Run = %v, want nil after a graceful shutdown", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Error("the server still accepts connections after Run returned")
	}
	if err := s.Run(t.Context()); err == nil {
		t.Error("a second Run did not fail")
	}
}

func TestRunShutdownTimeoutClosesConnections(t *testing.T) {
	lister := &stubVerdictLister{entered: make(chan struct{}, 1), release: make(chan struct{})}
	defer close(lister.release)
	c := newFixedFeedCache()
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", ShutdownTimeout: 50 * time.Millisecond}, c, lister, nil)
	cancel, wait := httpservertest.Start(t, s)
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	failed := make(chan error, 1)
	go func() {
		resp, err := client.Get("http://" + s.Addr() + "/binaries.html")
		if err == nil {
			resp.Body.Close()
		}
		failed <- err
	}()
	<-lister.entered
	cancel()
	if err := wait(); err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := <-failed; err == nil {
		t.Error("the stuck request succeeded; want its connection closed")
	}
}

func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := NewServer(ServerConfig{Addr: ln.Addr().String()}, NewFeedCache(), nil, nil)
	if err := s.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a busy port = %v", err)
	}
	select {
	case <-s.Ready():
		t.Error("Ready closed although the server never listened")
	default:
	}
}

func TestRunTLS(t *testing.T) {
	certFile, keyFile, pool := httpservertest.SelfSignedCert(t)
	c := newFixedFeedCache()
	if err := c.Render(goldenFeedInfo(t), BuildReports(goldenVerdicts(), FeedOptions{})); err != nil {
		t.Fatal(err)
	}
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: keyFile, Username: "cb", Password: "pw"}, c, nil, nil)
	httpservertest.Start(t, s)

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+s.Addr()+"/feed.json", nil)
	req.SetBasicAuth("cb", "pw")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || !bytes.Equal(body, c.Current().Body()) {
		t.Errorf("status %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}

	// Plain HTTP to the TLS port is refused.
	plain := &http.Client{Transport: &http.Transport{}}
	defer plain.CloseIdleConnections()
	if resp, err := plain.Get("http://" + s.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP got 200 from the TLS server")
		}
	}

	t.Run("missing key file", func(t *testing.T) {
		s := NewServer(ServerConfig{Addr: "127.0.0.1:0", CertFile: certFile, KeyFile: certFile + ".missing"}, c, nil, nil)
		if err := s.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("Run = %v", err)
		}
	})
}

// TestConcurrentReadsDuringRenders serves the feed while it is re-rendered
// and checks that every response is one consistent snapshot: the body is
// the one its ETag names. Run it with -race.
func TestConcurrentReadsDuringRenders(t *testing.T) {
	srv, cache, _ := newTestFeedServer(t, ServerConfig{}, nil)
	info := goldenFeedInfo(t)
	all := BuildReports(syntheticVerdicts(200), FeedOptions{IncludeSHA256: true})

	// The ETag of every snapshot rendered, and the hash of its body.
	var (
		mu       sync.Mutex
		rendered = map[string][sha256.Size]byte{}
		served   = map[string][sha256.Size]byte{} // what the responses paired
	)
	record := func() {
		s := cache.Current()
		mu.Lock()
		rendered[s.ETag] = sha256.Sum256(s.Body())
		mu.Unlock()
	}
	record()
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		defer stop()
		for i := range 60 {
			if err := cache.Render(info, all[:1+i*3]); err != nil {
				t.Error(err)
				return
			}
			record()
		}
	})
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for w := range 8 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil || n < 5; n++ {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/feed.json", nil)
				gz := (w+n)%2 == 0
				if gz {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Error(err)
					return
				}
				if gz {
					zr, err := gzip.NewReader(bytes.NewReader(body))
					if err != nil {
						t.Error(err)
						return
					}
					if body, err = io.ReadAll(zr); err != nil {
						t.Error(err)
						return
					}
				}
				tag := strings.TrimSuffix(strings.TrimSuffix(resp.Header.Get("Etag"), `"`), "-gzip") + `"`
				sum := sha256.Sum256(body)
				mu.Lock()
				if prev, ok := served[tag]; ok && prev != sum {
					t.Errorf("ETag %s named two bodies", tag)
				}
				served[tag] = sum
				mu.Unlock()
				if errs := ValidateFeedJSON(body); errs != nil {
					t.Errorf("served an invalid feed: %v", errs[0])
					return
				}
			}
		})
	}
	wg.Wait()
	if len(served) < 2 {
		t.Errorf("the responses saw %d snapshots; want several", len(served))
	}
	for tag, sum := range served {
		if want, ok := rendered[tag]; !ok || want != sum {
			t.Errorf("ETag %s does not name the body served with it (a snapshot with that tag: %v)", tag, ok)
		}
	}
}

func TestInventoryStatusAndMetricsStayOnThisHostByDefault(t *testing.T) {
	mount := func(mux *http.ServeMux) {
		mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("status")) })
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) })
	}
	for _, tc := range []struct {
		name   string
		cfg    ServerConfig
		remote string
		user   string
		path   string
		denied bool
	}{
		{"remote inventory", ServerConfig{}, "192.0.2.7:4000", "", "/binaries.html", true},
		{"remote status", ServerConfig{}, "192.0.2.7:4000", "", "/status", true},
		{"remote metrics", ServerConfig{}, "[2001:db8::1]:4000", "", "/metrics", true},
		{"remote feed", ServerConfig{}, "192.0.2.7:4000", "", "/feed.json", false},
		{"remote health", ServerConfig{}, "192.0.2.7:4000", "", "/healthz", false},
		{"loopback status", ServerConfig{}, "127.0.0.1:4000", "", "/status", false},
		{"loopback v6 metrics", ServerConfig{}, "[::1]:4000", "", "/metrics", false},
		{"public pages", ServerConfig{PublicPages: true}, "192.0.2.7:4000", "", "/binaries.html", false},
		{"remote with the feed credentials", ServerConfig{Username: "u", Password: "p"}, "192.0.2.7:4000", "u", "/status", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Addr, tc.cfg.Mount = "127.0.0.1:0", mount
			h := NewServer(tc.cfg, NewFeedCache(), nil, nil).Handler()
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			req.RemoteAddr = tc.remote
			if tc.user != "" {
				req.SetBasicAuth(tc.user, "p")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if denied := rec.Code == http.StatusForbidden; denied != tc.denied {
				t.Errorf("%s from %s: %d, want denied=%v", tc.path, tc.remote, rec.Code, tc.denied)
			}
		})
	}
}
