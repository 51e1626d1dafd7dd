package carbonblack

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sharedCB is the shared directory of real Carbon Black answers, read in
// place (it lives in /work/shared, outside the repository).
const sharedCB = "../../../../shared/testdata/cb"

const testToken = "cb-test-token-5f1c9e"

// cbFile returns the path of a real Carbon Black sample of
// ../shared/testdata/cb, skipping the (fidelity) test when it is absent.
func cbFile(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(sharedCB, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("fidelity test: ../shared/testdata/cb/%s absent (%v); it lives outside the repository", name, err)
	}
	return p
}

// cbDir returns ../shared/testdata/cb, skipping the (fidelity) test when it
// is absent.
func cbDir(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(sharedCB); err != nil {
		t.Skipf("fidelity test: ../shared/testdata/cb absent (%v); it lives outside the repository", err)
	}
	return sharedCB
}

// readJSON decodes a real sample of ../shared/testdata/cb (fidelity).
func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(cbFile(t, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}

// t0 is a fixed clock for deterministic tests.
var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

func newServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.Now == nil {
		cfg.Now = fixedNow
	}
	return New(cfg)
}

// call sends one request through ServeHTTP with the test token; body, when
// not nil, is sent as JSON.
func call(t *testing.T, s http.Handler, method, path string, body any) *http.Response {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	req.Header.Set("X-Auth-Token", testToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec.Result()
}

// callJSON sends a request, requires want as status and decodes the answer.
func callJSON(t *testing.T, s http.Handler, method, path string, body any, want int, out any) {
	t.Helper()
	resp := call(t, s, method, path, body)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

// search runs GET /api/v1/binary with q and the extra parameters.
func search(t *testing.T, s http.Handler, q string, extra url.Values) searchResult {
	t.Helper()
	v := url.Values{"q": {q}}
	for k, vs := range extra {
		v[k] = vs
	}
	var out searchResult
	callJSON(t, s, http.MethodGet, "/api/v1/binary?"+v.Encode(), nil, http.StatusOK, &out)
	return out
}

type searchResult struct {
	Results      []map[string]any `json:"results"`
	TotalResults int              `json:"total_results"`
	Start        int              `json:"start"`
	Terms        []string         `json:"terms"`
}

func (r searchResult) md5s() []string {
	out := make([]string, 0, len(r.Results))
	for _, d := range r.Results {
		out = append(out, d["md5"].(string))
	}
	return out
}

// searchAll returns every md5 matching q, in the order of sort.
func searchAll(t *testing.T, s http.Handler, q, sort string) []string {
	t.Helper()
	res := search(t, s, q, url.Values{"rows": {"1000"}, "sort": {sort}})
	return res.md5s()
}

// keyTypes maps each key of a decoded JSON object to its JSON type.
func keyTypes(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = jsonType(v)
	}
	return out
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return reflect.TypeOf(v).String()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// feedServer serves a feed document that a test can change, optionally
// behind basic auth, with an ETag.
type feedServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     []byte
	user     string
	pass     string
	requests int
	notMod   int
}

func newFeedServer(t *testing.T, body []byte) *feedServer {
	t.Helper()
	fs := &feedServer{body: body}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *feedServer) set(body []byte) {
	fs.mu.Lock()
	fs.body = body
	fs.mu.Unlock()
}

// counts returns how many requests were served and answered 304.
func (fs *feedServer) counts() (int, int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.requests, fs.notMod
}

func (fs *feedServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.requests++
	if fs.user != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != fs.user || p != fs.pass {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	sum := md5.Sum(fs.body)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	if r.Header.Get("If-None-Match") == etag {
		fs.notMod++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(fs.body)
}
