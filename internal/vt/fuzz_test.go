package vt

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fuzzKey is an API key no fuzzed answer contains by chance.
const fuzzKey = "fuzzKEYq7Zx93"

// seedFiles adds the project's own VirusTotal fixtures as seeds.
func seedFiles(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "vt", "*.json"))
	more, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, p := range append(paths, more...) {
		if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
			f.Add(b)
		}
	}
}

// FuzzDecodeObject: any "data" member decodes or fails cleanly; a decoded
// object keeps its input and has an id; decoding is deterministic.
func FuzzDecodeObject(f *testing.F) {
	seedFiles(f)
	for _, s := range []string{`{"id":"x","type":"file","attributes":{"last_analysis_stats":{"malicious":"3"}}}`, `{"id":1}`, `[]`, `null`, `{"id":"a","attributes":null}`,
		`{"id":"p","type":"private_file","attributes":{"sandbox_verdicts":{"Z":{"category":"malicious"}},"threat_severity":{"last_analysis_date":"17"}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		raw := data
		if env, _, err := decodeEnvelope("GET", "fuzz", data); err == nil {
			raw = env
		}
		o, err := DecodeObject(raw)
		if err != nil {
			return
		}
		if o.ID == "" || !bytes.Equal(bytes.TrimSpace(o.Raw), bytes.TrimSpace(raw)) && len(o.Raw) != 0 {
			t.Fatalf("decoded %q: id %q, raw %q", raw, o.ID, o.Raw)
		}
		again, err := DecodeObject(raw)
		if err != nil || again.ID != o.ID || again.Private != o.Private {
			t.Fatalf("decoding is not deterministic: %v", err)
		}
		if o.Private && strings.HasPrefix(o.Type, "private_") && o.Attributes.LastAnalysisStats == nil {
			t.Fatalf("a private report without stats: %q", raw)
		}
	})
}

// memTransport serves requests with a handler in process.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// FuzzAnswers: whatever VirusTotal answers (status, Retry-After, body),
// the client returns an object or a classified error that never holds the
// API key, and a 429 is always a *QuotaError with a sane wait.
func FuzzAnswers(f *testing.F) {
	seedFiles(f)
	f.Add([]byte(`{"error":{"code":"QuotaExceededError","message":"Quota exceeded"}}`))
	f.Add([]byte(`<html>502 Bad Gateway</html>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if bytes.Contains(body, []byte(fuzzKey)) {
			return
		}
		for _, st := range []struct {
			status int
			after  string
		}{{200, ""}, {404, ""}, {429, string(body[:min(len(body), 40)])}, {429, "120"}, {503, ""}, {400, ""}, {401, ""}} {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if st.after != "" {
					w.Header().Set("Retry-After", strings.Map(func(r rune) rune {
						if r < 0x20 || r == 0x7f {
							return -1
						}
						return r
					}, st.after))
				}
				w.WriteHeader(st.status)
				_, _ = w.Write(body)
			})
			c, err := New(fuzzKey, WithBaseURL("http://vt.fuzz/api/v3"), WithHTTPClient(&http.Client{Transport: memTransport{h}}))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = c.File(ctx, strings.Repeat("a", 64))
			cancel()
			if err != nil && strings.Contains(err.Error(), fuzzKey) {
				t.Fatalf("the error holds the API key: %v", err)
			}
			var qe *QuotaError
			if st.status == 429 && (!errors.As(err, &qe) || qe.RetryAfter < 0 || qe.RetryAfter > 24*time.Hour) {
				t.Fatalf("429 answered %v (retry after %v)", err, qe)
			}
			if st.status >= 400 && err == nil {
				t.Fatalf("status %d answered no error", st.status)
			}
		}
	})
}

// FuzzRetryAfter: any Retry-After header gives a wait in [0, 24 h].
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", "1e9", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, h string) {
		if d := parseRetryAfter(h, now); d < 0 || d > 24*time.Hour {
			t.Fatalf("parseRetryAfter(%q) = %s", h, d)
		}
	})
}

// FuzzParseQuery: a query is refused or gives a kind and a normalised id
// that parses again to itself.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"44d88612fea8a8f36de82e1278abb02f", "8.8.8.8", "::ffff:1.2.3.4", "Example.COM.", "http://x.example/a?b=c", "xn--nxasmq6b.com", "a..b", "1.2.3", "ÄÖ.de", "-x.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		kind, id, err := ParseQuery(q)
		if err != nil {
			return
		}
		if !kind.Valid() || id == "" {
			t.Fatalf("ParseQuery(%q) = %q %q", q, kind, id)
		}
		if kind == KindURL {
			return // a URL's id is the URL itself, parsed by VirusTotal
		}
		k2, id2, err := ParseQuery(id)
		if err != nil || k2 != kind || id2 != id {
			t.Fatalf("ParseQuery(%q) = %s %q, which parses as %s %q (%v)", q, kind, id, k2, id2, err)
		}
		if kind == KindDomain {
			if d, err := NormalizeDomain(id); err != nil || d != id {
				t.Fatalf("NormalizeDomain(%q) = %q, %v: not idempotent", id, d, err)
			}
		}
	})
}

// FuzzDecodeQuotas: any quota summary decodes or fails cleanly, and the
// effective allowance is never negative.
func FuzzDecodeQuotas(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "overall_quotas_*.json"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"data":{"api_requests_daily":{"user":{"allowed":"500","used":-3}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := DecodeQuotas(data)
		if err != nil || q == nil {
			return
		}
		for _, p := range []QuotaPair{q.Hourly, q.Daily, q.Monthly} {
			if e, ok := p.Effective(); ok && (e.Allowed < 0 || e.Used < 0) {
				t.Fatalf("negative allowance from %q: %+v", data, e)
			}
		}
	})
}
