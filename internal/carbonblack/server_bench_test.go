package carbonblack

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// feedDiscardWriter is a ResponseWriter that throws the body away.
type feedDiscardWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *feedDiscardWriter) Header() http.Header         { return w.h }
func (w *feedDiscardWriter) WriteHeader(code int)        { w.code = code }
func (w *feedDiscardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkServeFeed measures the /feed.json handler (middleware
// included) on a 100,000-report feed, in parallel: a conditional GET
// answered 304, and full 200s, which write the pre-rendered body in one
// call to a writer that discards it.
func BenchmarkServeFeed(b *testing.B) {
	c := NewFeedCache()
	if err := c.Render(DefaultFeedInfo(), BuildReports(syntheticVerdicts(100_000), FeedOptions{IncludeSHA256: true})); err != nil {
		b.Fatal(err)
	}
	snap := c.Current()
	h := NewServer(ServerConfig{}, c, nil, nil).Handler()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
		size int
	}{
		{"304", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": snap.GzipETag()}, http.StatusNotModified, 0},
		{"gzip-200", map[string]string{"Accept-Encoding": "gzip"}, http.StatusOK, len(snap.Gzip())},
		{"identity-200", nil, http.StatusOK, len(snap.Body())},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest(http.MethodGet, "/feed.json", nil)
				for k, v := range tc.hdr {
					r.Header.Set(k, v)
				}
				for pb.Next() {
					w := &feedDiscardWriter{h: http.Header{}}
					h.ServeHTTP(w, r)
					if w.code != tc.code || w.n != tc.size {
						b.Fatalf("status %d, %d bytes", w.code, w.n)
					}
				}
			})
		})
	}
}

// BenchmarkServeFeedHTTP measures /feed.json over a real loopback
// connection (httptest.Server, keep-alive) on a 100,000-report feed.
func BenchmarkServeFeedHTTP(b *testing.B) {
	c := NewFeedCache()
	if err := c.Render(DefaultFeedInfo(), BuildReports(syntheticVerdicts(100_000), FeedOptions{IncludeSHA256: true})); err != nil {
		b.Fatal(err)
	}
	snap := c.Current()
	srv := httptest.NewServer(NewServer(ServerConfig{}, c, nil, nil).Handler())
	defer srv.Close()
	client := srv.Client()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		code int
		size int
	}{
		{"304", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": snap.GzipETag()}, http.StatusNotModified, 0},
		{"gzip-200", map[string]string{"Accept-Encoding": "gzip"}, http.StatusOK, len(snap.Gzip())},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(tc.size))
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, srv.URL+"/feed.json", nil)
				for k, v := range tc.hdr {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.code || int(n) != tc.size {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}
