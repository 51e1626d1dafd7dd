package carbonblack

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// fuzzToken is a Cb API token no fuzzed answer contains by chance.
const fuzzToken = "cbFUZZtok7Qx"

type answer struct {
	status int
	body   []byte
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	rec.WriteHeader(a.status)
	_, _ = rec.Write(a.body)
	return rec.Result(), nil
}

func fuzzClient(t *testing.T, a answer) *Client {
	t.Helper()
	c, err := NewClient("https://cb.fuzz", fuzzToken, true, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c.WithHTTPClient(&http.Client{Transport: a})
}

// FuzzCbAnswers: whatever the Cb server answers to a search, a feed list
// or a server-info call, the client returns data or an error that never
// holds the token; search results always have usable MD5s and times.
func FuzzCbAnswers(f *testing.F) {
	f.Add(200, []byte(`{"results":[{"md5":"0123456789ABCDEF0123456789ABCDEF","server_added_timestamp":"2026-12-01T10:00:00.123Z","orig_mod_len":12}],"total_results":1,"start":0}`))
	f.Add(200, []byte(`{"results":[{"md5":"xyz","server_added_timestamp":"yesterday"}],"total_results":"many"}`))
	f.Add(200, []byte(`[{"id":1,"name":"virustotalconnector","enabled":true,"feed_url":"http://x/feed.json","extra":{"a":[1,2]}}]`))
	f.Add(401, []byte(`<html>denied</html>`))
	f.Add(500, []byte(`{"reason":"Solr down"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 || bytes.Contains(body, []byte(fuzzToken)) {
			return
		}
		c := fuzzClient(t, answer{status, body})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		page, _, err := c.SearchBinaries(ctx, "is_executable_image:true", 0, 10)
		if err != nil && strings.Contains(err.Error(), fuzzToken) {
			t.Fatalf("error holds the token: %v", err)
		}
		if err == nil {
			for _, b := range page.Results {
				if !isMD5(b.MD5) || b.ServerAddedTimestamp.IsZero() {
					t.Fatalf("unusable result kept: %+v", b)
				}
			}
		}
		if _, err := c.ListFeeds(ctx); err != nil && strings.Contains(err.Error(), fuzzToken) {
			t.Fatalf("error holds the token: %v", err)
		}
		if _, err := c.Info(ctx); err != nil && strings.Contains(err.Error(), fuzzToken) {
			t.Fatalf("error holds the token: %v", err)
		}
	})
}

// FuzzCbTime: a Cb timestamp parses or is refused, and formatting a
// parsed time reads back the same second.
func FuzzCbTime(f *testing.F) {
	for _, s := range []string{"2026-12-01T10:00:00.123Z", "2026-12-01T10:00:00Z", "2026-12-01 10:00:00.5", "2015-06-17T16:59:19.999999Z", "0000-00-00T00:00:00Z", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ts, err := ParseCbTime(s)
		if err != nil {
			return
		}
		back, err := ParseCbTime(FormatCbTime(ts))
		if err != nil || !back.Equal(ts.UTC().Truncate(time.Second)) {
			t.Fatalf("%q -> %s -> %q -> %s (%v)", s, ts, FormatCbTime(ts), back, err)
		}
	})
}

func zipOf(t testing.TB, members map[string][]byte) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range members {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzDownloadBinary: any answer to a binary download gives the filedata
// member (within the size limit) or an error, and leaves no file behind
// on error.
func FuzzDownloadBinary(f *testing.F) {
	f.Add(zipOf(f, map[string][]byte{"filedata": []byte("MZ binary"), "metadata": []byte("{}")}))
	f.Add(zipOf(f, map[string][]byte{"metadata": []byte("{}")}))
	f.Add(zipOf(f, map[string][]byte{"filedata": bytes.Repeat([]byte("A"), 5000)}))
	f.Add([]byte("PK\x03\x04 not really a zip"))
	const maxSize = 4096
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		c := fuzzClient(t, answer{200, body})
		path, n, err := c.DownloadBinary(context.Background(), "0123456789abcdef0123456789abcdef", dir, maxSize)
		left, _ := os.ReadDir(dir)
		if err != nil {
			if len(left) != 0 {
				t.Fatalf("a failed download left %d files", len(left))
			}
			return
		}
		st, serr := os.Stat(path)
		if serr != nil || st.Size() != n || n > maxSize || len(left) != 1 {
			t.Fatalf("download gave %s (%d bytes, %v), %d files", path, n, serr, len(left))
		}
	})
}

// FuzzFeedServer: any request to the feed server gets an answer (no
// panic), the feed and index need the credentials when they are set, and
// the answer never carries the password.
func FuzzFeedServer(f *testing.F) {
	for _, s := range []struct{ method, path, auth string }{
		{"GET", "/feed.json", "dTpw"}, {"HEAD", "/feed.json", ""}, {"GET", "/binaries.html?page=-1", "dTpw"},
		{"GET", "/binaries.html?page=99999999999999999999", "dTpw"}, {"POST", "/feed.json", ""}, {"GET", "/healthz", ""},
		{"GET", "/../etc/passwd", ""}, {"GET", "/feed.json", "Ym9ndXM="},
	} {
		f.Add(s.method, s.path, s.auth)
	}
	f.Add("GET", "/feed.json", "dTpwdy1mdXp6LXNlY3JldA==")
	cache := NewFeedCache()
	srv := NewServer(ServerConfig{Username: "u", Password: "pw-fuzz-secret"}, cache, nil, nil).Handler()
	f.Fuzz(func(t *testing.T, method, path, auth string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || method == "" {
			return
		}
		req, err := http.NewRequest(method, "http://feed.test"+path, nil)
		if err != nil {
			return
		}
		if auth != "" {
			req.Header.Set("Authorization", "Basic "+auth)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code < 100 || rec.Code > 599 {
			t.Fatalf("%s %s answered %d", method, path, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "pw-fuzz-secret") {
			t.Fatalf("%s %s shows the password", method, path)
		}
		authorized := auth == "dTpwdy1mdXp6LXNlY3JldA=="
		if !authorized && rec.Code == http.StatusOK && req.URL.Path != "/healthz" {
			t.Fatalf("%s %s answered 200 without credentials", method, path)
		}
	})
}
