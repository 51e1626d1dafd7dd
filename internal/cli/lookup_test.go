package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	fakevt "github.com/vtconnector/vtconnector/internal/fake/vt"
	"github.com/vtconnector/vtconnector/internal/vt"
)

// handlerTransport serves requests with an in-process handler, so tests
// can run inside synctest bubbles (no real sockets).
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	if r.Body != nil {
		defer r.Body.Close()
	}
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

const simBase = "http://vt.sim/api/v3"

type runResult struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, sim http.Handler, stdin string, vars map[string]string, args ...string) runResult {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{
		stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb,
		getenv: func(k string) string { return vars[k] },
	}
	if sim != nil { // nil: real HTTP
		e.transport = handlerTransport{sim}
	}
	code := run(t.Context(), args, e)
	return runResult{code, out.String(), errb.String()}
}

func decodeLines(t *testing.T, s string) []lookupResult {
	t.Helper()
	var out []lookupResult
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r lookupResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("output line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// simObject asks the simulator directly, bypassing vtconnector, for the
// reference answer.
func simObject(t *testing.T, sim http.Handler, path string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/api/v3/"+path, nil)
	req.Header.Set("x-apikey", "k")
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	var body struct {
		Data struct {
			ID         string         `json:"id"`
			Attributes map[string]any `json:"attributes"`
		} `json:"data"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if body.Data.Attributes == nil {
		return rec.Code, nil
	}
	body.Data.Attributes["__id"] = body.Data.ID
	return rec.Code, body.Data.Attributes
}

func stat(a map[string]any, k string) int {
	s, _ := a["last_analysis_stats"].(map[string]any)
	f, _ := s[k].(float64)
	return int(f)
}

func TestLookupJSONInInputOrder(t *testing.T) {
	sim := fakevt.New(fakevt.Config{Seed: 7})
	queries := []string{
		strings.Repeat("ab", 16), strings.Repeat("cd", 20), strings.Repeat("ef", 32),
		"8.8.8.8", "2001:db8::1", "Example.COM", "https://example.org/path?q=1", "example.net/login.php",
	}
	for i := range 20 {
		queries = append(queries, fmt.Sprintf("%032x", i*7919+1))
	}
	r := runCLI(t, sim, "", nil, append([]string{"lookup", "--apikey", "k", "--vt-url", simBase, "--rate", "0", "--daily", "0", "--monthly", "0", "--concurrency", "8"}, queries...)...)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	got := decodeLines(t, r.stdout)
	if len(got) != len(queries) {
		t.Fatalf("%d results for %d queries", len(got), len(queries))
	}
	found, unknown := 0, 0
	for i, res := range got {
		if res.Query != queries[i] {
			t.Errorf("result %d is for %q, want %q (input order)", i, res.Query, queries[i])
		}
		if res.Error != "" {
			t.Errorf("%s: error %q", res.Query, res.Error)
			continue
		}
		kind, id, _ := vt.ParseQuery(queries[i])
		if res.Type != string(kind) {
			t.Errorf("%s: type %q, want %q", res.Query, res.Type, kind)
		}
		var path string
		switch kind {
		case vt.KindFile:
			path = "files/" + id
		case vt.KindIP:
			path = "ip_addresses/" + id
		case vt.KindDomain:
			path = "domains/" + id
		case vt.KindURL:
			path = "urls/" + vt.URLID(id)
		}
		code, want := simObject(t, sim, path)
		if (code == 200) != res.Found {
			t.Errorf("%s: found=%v but the simulator answers %d", res.Query, res.Found, code)
			continue
		}
		if !res.Found {
			unknown++
			if res.Malicious != 0 || res.Link == "" {
				t.Errorf("%s: not found but %+v", res.Query, res)
			}
			continue
		}
		found++
		if res.ID != want["__id"] {
			t.Errorf("%s: id %q, want %q", res.Query, res.ID, want["__id"])
		}
		for k, v := range map[string]int{"malicious": res.Malicious, "suspicious": res.Suspicious, "harmless": res.Harmless, "undetected": res.Undetected} {
			if stat(want, k) != v {
				t.Errorf("%s: %s = %d, want %d", res.Query, k, v, stat(want, k))
			}
		}
		wantLink := map[vt.Kind]string{vt.KindFile: "/gui/file/", vt.KindIP: "/gui/ip-address/", vt.KindDomain: "/gui/domain/", vt.KindURL: "/gui/url/"}[kind]
		if !strings.HasPrefix(res.Link, vt.GUIBaseURL) || !strings.Contains(res.Link, wantLink+res.ID) {
			t.Errorf("%s: link %q, want %s%s%s", res.Query, res.Link, vt.GUIBaseURL, wantLink, res.ID)
		}
	}
	if found == 0 || unknown == 0 {
		t.Errorf("found %d, unknown %d: the mix should have both", found, unknown)
	}
}

func TestLookupBadInputAndUsage(t *testing.T) {
	sim := fakevt.New(fakevt.Config{})
	base := []string{"lookup", "--apikey", "k", "--vt-url", simBase, "--rate", "0"}
	t.Run("invalid query gets its own error, others still answered", func(t *testing.T) {
		r := runCLI(t, sim, "", nil, append(base, "8.8.8.8", "not a query!", "zz"+strings.Repeat("0", 30), "example.com")...)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
		}
		got := decodeLines(t, r.stdout)
		if len(got) != 4 || got[0].Error != "" || got[3].Error != "" {
			t.Fatalf("results %+v", got)
		}
		for _, i := range []int{1, 2} {
			if !strings.Contains(got[i].Error, "invalid query") {
				t.Errorf("%q: error %q, want an invalid query error", got[i].Query, got[i].Error)
			}
			if !strings.Contains(r.stderr, got[i].Query) {
				t.Errorf("stderr does not list the failed query %q:\n%s", got[i].Query, r.stderr)
			}
		}
		if !strings.Contains(r.stderr, "2 of 4 queries not answered") {
			t.Errorf("stderr summary missing:\n%s", r.stderr)
		}
	})
	t.Run("stdin with comments and blank lines", func(t *testing.T) {
		r := runCLI(t, sim, "# hashes\n\n8.8.4.4\n  example.org  \n", nil, append(base, "-")...)
		got := decodeLines(t, r.stdout)
		if r.code != 0 || len(got) != 2 || got[0].Query != "8.8.4.4" || got[1].Query != "example.org" {
			t.Fatalf("exit %d, results %+v\n%s", r.code, got, r.stderr)
		}
	})
	t.Run("key from the environment", func(t *testing.T) {
		r := runCLI(t, sim, "", map[string]string{"VIRUSTOTAL_TOKEN": "envkey", "VIRUSTOTAL_URL": simBase}, "lookup", "1.1.1.1")
		if r.code != 0 || len(decodeLines(t, r.stdout)) != 1 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no key", []string{"lookup", "--vt-url", simBase, "8.8.8.8"}, "no VirusTotal API key"},
		{"bad format", append(base, "--format", "xml", "8.8.8.8"), `--format "xml"`},
		{"bad concurrency", append(base, "--concurrency", "0", "8.8.8.8"), "--concurrency 0"},
		{"negative rate", []string{"lookup", "--apikey", "k", "--rate", "-1", "8.8.8.8"}, "must not be negative"},
		{"bad URL", []string{"lookup", "--apikey", "k", "--vt-url", "ftp://x", "8.8.8.8"}, "--vt-url"},
		{"upload without file", append(base, "--upload", "8.8.8.8"), "--upload needs --file"},
		{"unknown flag", append(base, "--frobnicate"), "unknown flag"},
		{"no queries", append(base, "-"), "no queries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, sim, "", nil, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
			if strings.Contains(r.stderr, "panic") {
				t.Errorf("stderr shows a panic:\n%s", r.stderr)
			}
		})
	}
	t.Run("wrong key stops early with exit 2", func(t *testing.T) {
		strict := fakevt.New(fakevt.Config{Keys: []string{"good"}})
		r := runCLI(t, strict, "", nil, "lookup", "--apikey", "bad-key-123", "--vt-url", simBase, "--rate", "0", "--concurrency", "1", "8.8.8.8", "1.1.1.1", "example.com")
		if r.code != 2 || !strings.Contains(r.stderr, "rejected the API key") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if strings.Contains(r.stderr+r.stdout, "bad-key-123") {
			t.Errorf("the API key was printed")
		}
		if n := strict.Stats().APIRequests(); n != 1 {
			t.Errorf("%d requests sent with a rejected key, want 1", n)
		}
	})
}

func TestLookupFormats(t *testing.T) {
	sim := fakevt.New(fakevt.Config{})
	base := []string{"lookup", "--apikey", "k", "--vt-url", simBase, "--rate", "0", "8.8.8.8", "bad query"}
	r := runCLI(t, sim, "", nil, append(base, "--format", "csv")...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || lines[0] != "query,type,id,found,malicious,suspicious,harmless,undetected,link,error" ||
		!strings.HasPrefix(lines[1], "8.8.8.8,ip_address,8.8.8.8,") || !strings.HasPrefix(lines[2], "bad query,,,false") {
		t.Errorf("csv output:\n%s", r.stdout)
	}
	r = runCLI(t, sim, "", nil, append(base, "--format", "table")...)
	lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "QUERY") || !strings.Contains(lines[2], "error: invalid query") {
		t.Errorf("table output:\n%s", r.stdout)
	}
}

func TestLookupQuotaExhaustedPrintsWhatItHas(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{})
		var qs []string
		for i := range 8 {
			qs = append(qs, fmt.Sprintf("10.0.0.%d", i+1))
		}
		r := runCLI(t, sim, "", nil, append([]string{"lookup", "--apikey", "k", "--vt-url", simBase,
			"--rate", "4", "--daily", "5", "--concurrency", "2", "--max-wait", "10m"}, qs...)...)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1; stderr:\n%s", r.code, r.stderr)
		}
		got := decodeLines(t, r.stdout)
		if len(got) != 8 {
			t.Fatalf("%d results, want 8", len(got))
		}
		answered := 0
		for i, res := range got {
			if res.Query != qs[i] {
				t.Errorf("result %d is for %s, want %s (input order)", i, res.Query, qs[i])
			}
			if res.Error == "" {
				answered++
			} else if !strings.Contains(res.Error, "day quota used up") {
				t.Errorf("result %d error %q, want the day quota named", i, res.Error)
			}
		}
		// Two workers race for the last slots, so which 5 is not fixed.
		if answered != 5 {
			t.Errorf("%d answered, want the 5 the day's budget allows", answered)
		}
		if !strings.Contains(r.stderr, "the VirusTotal day quota is used up until 2000-01-02T00:00:00Z") {
			t.Errorf("stderr should say when the quota resets:\n%s", r.stderr)
		}
		if n := sim.Stats().APIRequests(); n != 5 {
			t.Errorf("simulator saw %d requests, want 5", n)
		}
	})
}

func TestLookupSurvivesServer429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The key really allows 2 a minute; we claim 10.
		sim := fakevt.New(fakevt.Config{QuotaPerMinute: 2})
		var qs []string
		for i := range 6 {
			qs = append(qs, fmt.Sprintf("host%d.example.com", i))
		}
		r := runCLI(t, sim, "", nil, append([]string{"lookup", "--apikey", "k", "--vt-url", simBase,
			"--rate", "10", "--daily", "0", "--max-wait", "0"}, qs...)...)
		if r.code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
		if got := decodeLines(t, r.stdout); len(got) != 6 {
			t.Fatalf("%d results, want 6", len(got))
		}
		if st := sim.Stats(); st.QuotaExceeded == 0 {
			t.Errorf("the simulator refused nothing: the test did not exercise 429s")
		}
	})
}

func TestLookupFileAndUpload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{AnalysisDelay: 20 * 1e9})
		dir := t.TempDir()
		// Find content the simulator does not know.
		var path string
		for i := range 200 {
			p := filepath.Join(dir, fmt.Sprintf("sample%d.bin", i))
			if err := os.WriteFile(p, []byte(fmt.Sprintf("sample content %d", i)), 0o600); err != nil {
				t.Fatal(err)
			}
			h, _ := vt.SHA256File(p)
			if code, _ := simObject(t, sim, "files/"+h); code == 404 {
				path = p
				break
			}
		}
		if path == "" {
			t.Fatal("no unknown content found")
		}
		base := []string{"lookup", "--apikey", "k", "--vt-url", simBase, "--rate", "0", "--file", path}
		r := runCLI(t, sim, "", nil, base...)
		got := decodeLines(t, r.stdout)
		if r.code != 0 || len(got) != 1 || got[0].Found || got[0].Type != "file" {
			t.Fatalf("without --upload: exit %d %+v\n%s", r.code, got, r.stderr)
		}
		if sim.Stats().ByEndpoint["POST /files"] != 0 {
			t.Fatalf("a file was uploaded without --upload")
		}
		r = runCLI(t, sim, "", nil, append(base, "--upload")...)
		got = decodeLines(t, r.stdout)
		if r.code != 0 || len(got) != 1 || !got[0].Found || !got[0].Uploaded {
			t.Fatalf("with --upload: exit %d %+v\n%s", r.code, got, r.stderr)
		}
		if !strings.Contains(r.stderr, "WARNING") {
			t.Errorf("no upload warning on stderr")
		}
		h, _ := vt.SHA256File(path)
		if got[0].ID != h {
			t.Errorf("id %q, want the file's SHA-256 %q", got[0].ID, h)
		}
		r = runCLI(t, sim, "", nil, "lookup", "--apikey", "k", "--vt-url", simBase, "--file", filepath.Join(dir, "missing"))
		if r.code != 1 || !strings.Contains(r.stdout, "no such file") {
			t.Errorf("missing file: exit %d\n%s", r.code, r.stdout)
		}
	})
}

func TestLookupCancelled(t *testing.T) {
	sim := fakevt.New(fakevt.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"lookup", "--apikey", "k", "--vt-url", simBase, "8.8.8.8", "1.1.1.1"},
		&env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }, transport: handlerTransport{sim}})
	if code != 1 || len(decodeLines(t, out.String())) != 2 {
		t.Errorf("cancelled run: exit %d, stdout %q", code, out.String())
	}
}

func TestLookupPrivateUploadNeverReachesPublicEndpoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := fakevt.New(fakevt.Config{UnknownPercent: 100, AnalysisDelay: 40 * time.Second})
		path := filepath.Join(t.TempDir(), "private.bin")
		if err := os.WriteFile(path, []byte("a file for private eyes only"), 0o600); err != nil {
			t.Fatal(err)
		}
		base := []string{"lookup", "--apikey", "k", "--vt-url", simBase, "--rate", "0", "--file", path}
		r := runCLI(t, sim, "", nil, append(base, "--private")...)
		if r.code != ExitUsage || !strings.Contains(r.stderr, "--private needs --upload") {
			t.Errorf("--private without --upload: exit %d\n%s", r.code, r.stderr)
		}
		r = runCLI(t, sim, "", nil, append(base, "--upload", "--private")...)
		got := decodeLines(t, r.stdout)
		if r.code != 0 || len(got) != 1 || !got[0].Found || !got[0].Uploaded {
			t.Fatalf("--upload --private: exit %d %+v\n%s", r.code, got, r.stderr)
		}
		if strings.Contains(r.stderr, "WARNING") || !strings.Contains(r.stderr, "Private Scanning") {
			t.Errorf("stderr should explain the private upload, without the public upload warning:\n%s", r.stderr)
		}
		st := sim.Stats()
		if st.ByEndpoint["POST /private/files"] != 1 {
			t.Errorf("private uploads %d, want 1 (endpoints %v)", st.ByEndpoint["POST /private/files"], st.ByEndpoint)
		}
		for _, ep := range []string{"POST /files", "GET /files/upload_url", "POST /urls", "GET /analyses/{id}"} {
			if n := st.ByEndpoint[ep]; n != 0 {
				t.Errorf("private mode sent %d requests to the public endpoint %s", n, ep)
			}
		}
		// The private file stays invisible to public lookups.
		h, _ := vt.SHA256File(path)
		if code, _ := simObject(t, sim, "files/"+h); code != 404 {
			t.Errorf("the privately uploaded file is public: GET /files/%s answered %d", h, code)
		}
	})
}

func TestLookupReadsTheKeyFromAFileOrStandardInput(t *testing.T) {
	sim := fakevt.New(fakevt.Config{Keys: []string{"file-held-key"}, UnknownPercent: -1})
	keyFile := filepath.Join(t.TempDir(), "vt.key")
	if err := os.WriteFile(keyFile, []byte("file-held-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, sim, "", nil, "lookup", "--apikey-file", keyFile, "--vt-url", simBase, "--rate", "0", "8.8.8.8")
	if got := decodeLines(t, r.stdout); r.code != 0 || len(got) != 1 || !got[0].Found {
		t.Errorf("--apikey-file FILE: exit %d %+v\n%s", r.code, got, r.stderr)
	}
	r = runCLI(t, sim, "file-held-key\n8.8.8.8\nexample.com\n", nil, "lookup", "--apikey-file", "-", "--vt-url", simBase, "--rate", "0")
	if got := decodeLines(t, r.stdout); r.code != 0 || len(got) != 2 || got[0].Query != "8.8.8.8" {
		t.Errorf("--apikey-file -: exit %d %+v\n%s", r.code, got, r.stderr)
	}
	r = runCLI(t, sim, "", nil, "lookup", "--apikey-file", keyFile, "--apikey", "x", "--vt-url", simBase, "8.8.8.8")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "give one") {
		t.Errorf("both flags: exit %d\n%s", r.code, r.stderr)
	}
	r = runCLI(t, sim, "", nil, "lookup", "--apikey-file", filepath.Join(t.TempDir(), "none"), "--vt-url", simBase, "8.8.8.8")
	if r.code != ExitUsage || !strings.Contains(r.stderr, "--apikey-file") {
		t.Errorf("missing key file: exit %d\n%s", r.code, r.stderr)
	}
}
